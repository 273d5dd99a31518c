import { create, toBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { LogMessageSchema, type LogMessage } from "../../src/gen/diego/v1/internal_pb.js";
import { decoderFor } from "../../src/model/codecs.js";
import { connectNats } from "../../src/nats/index.js";
import { createRecordIndex, defineView, RecordEntry, type EntryContext, type RecordIndex, type RecordKind } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// The record index is not tied to tasks: a second kind of record (here log messages keyed
// "guid.index", as actual LRPs will be by process_guid and index) gets the same watch-fed view,
// its own secondary indexes, and views that a layer above defines.

class IndexedLine extends RecordEntry<LogMessage> {
  readonly source: string;
  constructor(key: string, revision: number, bytes: Uint8Array, record: LogMessage, ctx: EntryContext<LogMessage>) {
    super(key, revision, bytes, record, ctx);
    this.source = ctx.intern(record.sourceName);
  }
}

const decodeLine = decoderFor<LogMessage>(LogMessageSchema);

const lineKind: RecordKind<LogMessage, IndexedLine, "source" | "log"> = {
  name: "test-lines",
  decode: decodeLine,
  entry: (key, revision, bytes, record, ctx) => new IndexedLine(key, revision, bytes, record, ctx),
  secondary: { source: (e) => e.source, log: (e) => e.record.logGuid },
};

let made = 0;
const upper = defineView("upper", (e: IndexedLine): string => (made++, e.transientRecord().message.toUpperCase()));

let nats: TestNats;
let nc: NatsConnection;
let kv: KV;
let index: RecordIndex<IndexedLine, "source" | "log">;

const line = (logGuid: string, sourceName: string, message: string): Uint8Array =>
  toBinary(LogMessageSchema, create(LogMessageSchema, { logGuid, sourceName, message }));

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "record-index-test" });
  kv = await new Kvm(jetstream(nc)).create("test-lines", { history: 1 });
  await kv.put("web.0", line("web", "APP", "zero"));
  index = await createRecordIndex(kv, lineKind, { nc, warm: [upper] });
  await index.ready();
});

afterAll(async () => {
  await index?.stop();
  await nc?.close();
  await nats?.dispose();
});

describe("a record index of another kind", () => {
  it("replays what is stored, then follows puts and deletes by key, with its own secondary indexes", async () => {
    expect(index.get("web.0")?.record.message).toBe("zero");
    await kv.put("web.1", line("web", "APP", "one"));
    await kv.put("worker.0", line("worker", "CELL", "two"));
    await vi.waitFor(() => expect(index.size()).toBe(3));
    expect(index.listBy("source", "APP").map((e) => e.key).sort()).toEqual(["web.0", "web.1"]);
    expect(index.listBy("log", "worker").map((e) => e.key)).toEqual(["worker.0"]);

    await kv.put("web.1", line("web", "CELL", "one, moved"));
    await vi.waitFor(() => expect(index.get("web.1")?.source).toBe("CELL"));
    expect(index.listBy("source", "APP").map((e) => e.key)).toEqual(["web.0"]);
    expect(index.listBy("source", "CELL").map((e) => e.key).sort()).toEqual(["web.1", "worker.0"]);

    await kv.delete("web.0");
    await vi.waitFor(() => expect(index.get("web.0")).toBeUndefined());
    expect(index.listBy("log", "web").map((e) => e.key)).toEqual(["web.1"]);
  });

  it("makes each view once per revision, ahead of use when asked to warm it", async () => {
    await kv.put("cron.0", line("cron", "APP", "tick"));
    await vi.waitFor(() => expect(index.get("cron.0")?.hasView(upper)).toBe(true), { timeout: 5000 });
    const before = made;
    const e = index.get("cron.0")!;
    expect([e.view(upper), e.view(upper)]).toEqual(["TICK", "TICK"]);
    expect(made).toBe(before);
    await kv.put("cron.0", line("cron", "APP", "tock"));
    await vi.waitFor(() => expect(index.get("cron.0")?.view(upper)).toBe("TOCK"));
  });

  it("treats a record that does not decode as absent", async () => {
    await kv.put("bad.0", new Uint8Array([0xff, 0xff, 0xff]));
    await kv.put("good.0", line("good", "APP", "fine"));
    await vi.waitFor(() => expect(index.get("good.0")).toBeDefined());
    expect(index.get("bad.0")).toBeUndefined();
  });
});
