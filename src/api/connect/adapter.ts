import http2 from "node:http2";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import { bodyTooLarge, echo } from "../../model/index.js";
import { statusHeaders } from "../grpc/errors.js";
import { callProtocol, replyError, SERVICE_PATH } from "../http/error-reply.js";
import { MAX_BODY_BYTES } from "../http/read-body.js";
import type { Req, Res } from "../http/types.js";
import { connectErrorBody } from "./errors.js";

// What the server adds to connect-node's adapter, which serves gRPC, gRPC-Web and Connect calls
// the fast path (grpc/unary.ts) leaves: streams, Connect JSON, compressed messages.

/**
 * A unary Connect call the fast path left (JSON, compressed): oversize is 413 as in REST.
 * Returns false when it has been answered.
 */
export function admitConnectUnary(req: Req, res: Res): boolean {
  if (callProtocol(req) !== "connect" || !/^application\/(json|proto)/.test(req.headers["content-type"] ?? "")) return true;
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) {
    const e = bodyTooLarge(MAX_BODY_BYTES);
    replyError(req, res, { status: 413, code: Code.ResourceExhausted, name: e.code, message: e.message });
    return false;
  }
  answerOversizeWith413(res);
  return true;
}

/**
 * A body without Content-Length that outgrows the limit reaches Connect's own check, which
 * answers resource_exhausted as 429; for a unary Connect call that is always an oversize body.
 */
function answerOversizeWith413(res: Res): void {
  const writeHead = res.writeHead.bind(res) as (status: number, ...rest: unknown[]) => unknown;
  (res as { writeHead: unknown }).writeHead = (status: number, ...rest: unknown[]) => writeHead(status === 429 ? 413 : status, ...rest);
}

/**
 * Connect reports a request message that does not decode as INTERNAL ("parse binary: ...");
 * for a stream's request it happens inside the call, where this turns it into what it is.
 */
export const invalidStreamInput: Interceptor = (next) => async (req) => {
  if (!req.stream) return next(req);
  const input = req.message;
  async function* checked(): AsyncIterable<unknown> {
    try {
      yield* input;
    } catch (err) {
      const ce = ConnectError.from(err);
      if (ce.code === Code.Internal && ce.rawMessage.startsWith("parse binary")) {
        throw new ConnectError(`InvalidRequest: cannot decode ${req.method.input.typeName}: ${ce.rawMessage}`, Code.InvalidArgument);
      }
      throw err;
    }
  }
  return next({ ...req, message: checked() } as typeof req);
};

/** Connect's handler for requests no route takes (its own answers an empty 404). */
type ConnectFallback = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;

/**
 * Nothing serves this path. A gRPC client is told UNIMPLEMENTED in gRPC's own terms (an HTTP 404
 * would reach it as "Received http2 header with status: 404"); a Connect client gets a 404 with
 * Connect's error body; anyone else gets the REST error.
 */
export const answerUnknownPath: ConnectFallback = (req, res) => {
  const rawPath = (req.url ?? "/").split("?")[0]!;
  const path = echo(rawPath);
  const contentType = req.headers["content-type"] ?? "";
  if (/^application\/grpc(-web)?(\+|;|$)/.test(contentType)) {
    const headers = {
      "content-type": contentType.startsWith("application/grpc-web") ? "application/grpc-web+proto" : "application/grpc",
      ...statusHeaders({ code: Code.Unimplemented, message: `unknown method ${path}` }),
    };
    if (res instanceof http2.Http2ServerResponse) {
      // Trailers-only: the status in one HEADERS frame that ends the stream. (writeHead and end
      // would send an empty DATA frame after it, and the reset that follows reaches grpc-js first.)
      if (!res.stream.destroyed) res.stream.respond({ ":status": 200, ...headers }, { endStream: true });
    } else {
      res.writeHead(200, headers);
      res.end();
    }
    return;
  }
  // A Connect call (a service path, POSTed): Connect's error body, which its clients read.
  const connectCall = req.method === "POST" && SERVICE_PATH.test(rawPath);
  const body = connectCall
    ? connectErrorBody(Code.Unimplemented, `unknown method ${path}`)
    : JSON.stringify({ name: "InvalidRequest", message: `no route for ${req.method} ${path}` });
  res.writeHead(404, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) });
  res.end(body);
};
