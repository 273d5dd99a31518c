import { bodyTooLarge, StacklessError } from "../../model/index.js";
import type { Req } from "./types.js";

// Reading a request body, once for every protocol: REST JSON, gRPC, gRPC-Web and Connect.

/** The largest request body (or message) any protocol takes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The client closed the connection (or reset the stream) before its body arrived whole. */
export class ClientGoneError extends StacklessError {
  override readonly name = "ClientGoneError";
  constructor() {
    super("the client went before its request arrived");
  }
}

/**
 * The whole body, at most `limit` bytes. A longer one fails with RequestTooLarge naming
 * `reportedLimit` (the message limit, where framing adds bytes) as soon as that is known, from
 * Content-Length or from what has come; the rest is read and dropped so that the reply goes out
 * at once. A client that goes first fails it with ClientGoneError.
 */
export function readBody(req: Req, limit = MAX_BODY_BYTES, reportedLimit = limit): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers["content-length"] ?? 0) > limit) {
      req.resume();
      reject(bodyTooLarge(reportedLimit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    req.on("data", (chunk: Buffer) => {
      if (size > limit) return;
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
      } else {
        chunks.length = 0;
        reject(bodyTooLarge(reportedLimit));
      }
    });
    req.on("end", () => {
      ended = true;
      // (After a rejection this settles nothing.)
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on("error", () => reject(new ClientGoneError()));
    // A stream reset by the client ends without "end": settle rather than wait for ever.
    req.on("close", () => {
      if (!ended) reject(new ClientGoneError());
    });
  });
}
