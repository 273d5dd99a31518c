import { FastReader } from "../../model/index.js";
import { defineView, type IndexedTask } from "../../store/index.js";

// A task as protobuf binary (a TaskResponse), what ListTasks sends in every binary protocol: a
// view into the stored TaskRecord's bytes, found anew at each use (a few field tags to skip:
// cheaper than the memory to keep it).

export const taskBinaryView = defineView("protobuf", (t: IndexedTask): Uint8Array => taskField(t.bytes), { cache: "none" });

/** The bytes of field 1 (task) of an encoded TaskRecord; empty if it has none. */
function taskField(record: Uint8Array): Uint8Array {
  const r = new FastReader(record);
  let found: Uint8Array | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 0x0a) {
      // Twice would mean "merge the two"; no writer of ours does that, but be exact anyway.
      if (found) return Buffer.concat([found, r.bytes()]);
      found = r.bytes();
    } else {
      r.skip(tag & 7, tag >>> 3);
    }
  }
  return found ?? new Uint8Array(0);
}
