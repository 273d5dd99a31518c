import type { Req, Res } from "../http/types.js";
import type { GrpcCallError } from "./errors.js";
import { statusHeaders } from "./errors.js";
import { HEADER_BYTES, parseGrpcTimeout, unwrapEnvelope, wrap } from "./framing.js";

/** One of the binary unary protocols of the fast path: how its request is framed and its reply written. */
export interface Wire {
  /** Bytes the framing adds to the request message. */
  readonly framingBytes: number;
  /** The request message: gRPC and gRPC-Web wrap it in a 5-byte envelope, Connect does not. */
  unwrap(body: Buffer): Uint8Array;
  /** The deadline the client set, in milliseconds. */
  timeoutMs(req: Req): number | undefined;
  ok(res: Res, message: Uint8Array): void;
  fail(res: Res, e: GrpcCallError): void;
}

export const grpcWire: Wire = {
  framingBytes: HEADER_BYTES,
  unwrap: unwrapEnvelope,
  timeoutMs: (req) => parseGrpcTimeout(req.headers["grpc-timeout"]),
  ok(res, message) {
    res.writeHead(200, { "content-type": "application/grpc" });
    res.addTrailers({ "grpc-status": "0" });
    res.end(wrap(message));
  },
  fail(res, e) {
    // Headers, no message, then the status in the trailers.
    res.writeHead(200, { "content-type": "application/grpc" });
    res.addTrailers(statusHeaders(e));
    res.end();
  },
};

export const grpcWebWire: Wire = {
  framingBytes: HEADER_BYTES,
  unwrap: unwrapEnvelope,
  timeoutMs: (req) => parseGrpcTimeout(req.headers["grpc-timeout"]),
  ok(res, message) {
    const trailer = Buffer.from("grpc-status:0\r\n");
    const out = Buffer.concat([wrap(message), Buffer.from([0x80, 0, 0, 0, 0]), trailer]);
    out.writeUInt32BE(trailer.length, HEADER_BYTES + message.length + 1);
    res.writeHead(200, { "content-type": "application/grpc-web+proto", "content-length": String(out.length) });
    res.end(out);
  },
  fail(res, e) {
    // Trailers-only: the status in the headers, no body.
    res.writeHead(200, { "content-type": "application/grpc-web+proto", "content-length": "0", ...statusHeaders(e) });
    res.end();
  },
};
