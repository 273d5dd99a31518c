import { bufferParts, concatParts, partsLength, separatedParts, writeParts, type EncodedParts } from "../http/write-parts.js";
import type { Res } from "../http/types.js";

// Lists of documents already encoded (each task's JSON is kept in the index), streamed.

export { bufferParts, type EncodedParts };

const OPEN = bufferParts([Buffer.from("[")]);
const CLOSE = bufferParts([Buffer.from("]")]);
const COMMA = 0x2c;

/** 200 with a JSON array of documents already encoded, written as the client takes it. */
export async function sendJsonArray(res: Res, docs: EncodedParts): Promise<void> {
  const parts = concatParts(OPEN, separatedParts(docs, COMMA), CLOSE);
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(partsLength(parts)) });
  await writeParts(res, parts);
}
