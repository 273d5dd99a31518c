import http2 from "node:http2";
import type { Code } from "@connectrpc/connect";
import { connectErrorBody } from "../connect/errors.js";
import { statusHeaders } from "../grpc/errors.js";
import type { Req, Res } from "./types.js";

// An error answered before any handler runs (no credentials, a request that took too long, an
// unknown path), in the caller's own protocol: gRPC and gRPC-Web read a status from headers,
// Connect a JSON {code,message} with an HTTP status, REST a JSON {name,message}: each the
// protocol's own error mapping (grpc/errors.ts, connect/errors.ts).

export interface ErrorReply {
  /** HTTP status for REST and Connect. */
  status: number;
  code: Code;
  /** The REST error name, e.g. Unauthorized. */
  name: string;
  message: string;
  headers?: Record<string, string>;
}

/** `/package.Service/Method`, the path of a gRPC or Connect call. */
export const SERVICE_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;

const GRPC_ANY = /^application\/grpc(-web)?(\+|;|-text|$)/;

export type CallProtocol = "grpc" | "grpc-web" | "connect" | "rest";

export function callProtocol(req: Req): CallProtocol {
  const contentType = req.headers["content-type"] ?? "";
  const m = GRPC_ANY.exec(contentType);
  if (m) return m[1] ? "grpc-web" : "grpc";
  const path = (req.url ?? "/").split("?")[0]!;
  return req.method === "POST" && SERVICE_PATH.test(path) ? "connect" : "rest";
}

export function replyError(req: Req, res: Res, e: ErrorReply): void {
  const protocol = callProtocol(req);
  if (protocol === "grpc" || protocol === "grpc-web") {
    const headers = {
      ...e.headers,
      "content-type": protocol === "grpc-web" ? "application/grpc-web+proto" : "application/grpc",
      ...statusHeaders({ code: e.code, message: `${e.name}: ${e.message}`, errorName: e.name }),
    };
    if (res instanceof http2.Http2ServerResponse) {
      // Trailers-only: the status in one HEADERS frame that ends the stream. (writeHead and end
      // would send an empty DATA frame after it, and the reset that follows reaches grpc-js first.)
      if (!res.stream.destroyed && !res.stream.headersSent) {
        res.stream.respond({ ...res.getHeaders(), ":status": 200, ...headers }, { endStream: true });
      }
      // The request body is not read: let it go without holding the stream.
      req.resume();
      return;
    }
    send(req, res, 200, headers, "");
    return;
  }
  const body =
    protocol === "connect"
      ? connectErrorBody(e.code, `${e.name}: ${e.message}`)
      : JSON.stringify({ name: e.name, message: e.message });
  send(req, res, e.status, { ...e.headers, "Content-Type": "application/json" }, body);
}

function send(req: Req, res: Res, status: number, headers: Record<string, string>, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  req.resume();
  res.writeHead(status, { ...headers, "Content-Length": String(Buffer.byteLength(body)) });
  res.end(body);
}
