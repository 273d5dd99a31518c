import type { ServerResponse } from "node:http";
import type { Res } from "../http/types.js";

// Writing REST replies.

export function send(res: Res, status: number): void {
  res.writeHead(status, { "Content-Length": "0" });
  res.end();
}

export function sendJson(res: Res, status: number, json: string | Buffer): void {
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": String(typeof json === "string" ? Buffer.byteLength(json) : json.length),
  });
  res.end(json);
}

/**
 * false when the chunk had to be buffered: the connection is full. (The union of HTTP/1 and
 * HTTP/2 responses has no callable write(); both have one.)
 */
export const write = (res: Res, chunk: string | Buffer): boolean => (res as ServerResponse).write(chunk);

/** Resolves once a full connection has room again, or is gone. */
export function drained(res: Res): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
