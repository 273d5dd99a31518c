import type { Res } from "../http/types.js";
import { drained, write } from "./reply.js";

// Lists of documents already encoded (each task's JSON is cached in the index), streamed.

/** What a large list is written in, one slice at a time as the client takes it. */
const LIST_SLICE_BYTES = 256 * 1024;
const [OPEN, COMMA, CLOSE] = ["[", ",", "]"].map((c) => Buffer.from(c)) as [Buffer, Buffer, Buffer];

/**
 * 200 with a JSON array of documents already encoded. Written in slices that wait for the client,
 * not copied into one buffer first: a list of 100,000 tasks is 53 MB, once per concurrent list.
 */
export async function sendJsonArray(res: Res, parts: Buffer[]): Promise<void> {
  let size = 2 + Math.max(0, parts.length - 1);
  for (const p of parts) size += p.length;
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(size) });
  let slice: Buffer[] = [OPEN];
  let sliceBytes = 1;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) slice.push(COMMA);
    slice.push(parts[i]!);
    sliceBytes += parts[i]!.length + 1;
    if (sliceBytes < LIST_SLICE_BYTES) continue;
    if (!write(res, Buffer.concat(slice))) await drained(res);
    if (res.destroyed) return;
    slice = [];
    sliceBytes = 0;
  }
  slice.push(CLOSE);
  res.end(Buffer.concat(slice));
}
