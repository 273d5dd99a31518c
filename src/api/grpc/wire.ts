import type { Req, Res } from "../http/types.js";
import type { GrpcCallError } from "./errors.js";
import { statusHeaders } from "./errors.js";
import { bufferParts, concatParts, partsLength, writeParts, type EncodedParts } from "../http/write-parts.js";
import { envelope, HEADER_BYTES, parseGrpcTimeout, unwrapEnvelope, wrap } from "./framing.js";

/** One of the binary unary protocols of the fast path: how its request is framed and its reply written. */
export interface Wire {
  /** Bytes the framing adds to the request message. */
  readonly framingBytes: number;
  /** The request message: gRPC and gRPC-Web wrap it in a 5-byte envelope, Connect does not. */
  unwrap(body: Buffer): Uint8Array;
  /** The deadline the client set, in milliseconds. */
  timeoutMs(req: Req): number | undefined;
  /** Writes the reply: a message whole, or in parts (a large list) as the client takes them. */
  ok(res: Res, message: Uint8Array | EncodedParts): void | Promise<void>;
  fail(res: Res, e: GrpcCallError): void;
}

export const grpcWire: Wire = {
  framingBytes: HEADER_BYTES,
  unwrap: unwrapEnvelope,
  timeoutMs: (req) => parseGrpcTimeout(req.headers["grpc-timeout"]),
  ok(res, message) {
    res.writeHead(200, { "content-type": "application/grpc" });
    res.addTrailers({ "grpc-status": "0" });
    if (message instanceof Uint8Array) return void res.end(wrap(message));
    return writeParts(res, concatParts(bufferParts([envelope(partsLength(message))]), message));
  },
  fail(res, e) {
    // Headers, no message, then the status in the trailers.
    res.writeHead(200, { "content-type": "application/grpc" });
    res.addTrailers(statusHeaders(e));
    res.end();
  },
};

/** gRPC-Web's trailers of a call that succeeded, as their frame. */
const GRPC_WEB_OK = ((trailer: Buffer) => Buffer.concat([envelope(trailer.length, 0x80), trailer]))(Buffer.from("grpc-status:0\r\n"));

export const grpcWebWire: Wire = {
  framingBytes: HEADER_BYTES,
  unwrap: unwrapEnvelope,
  timeoutMs: (req) => parseGrpcTimeout(req.headers["grpc-timeout"]),
  ok(res, message) {
    const length = message instanceof Uint8Array ? message.length : partsLength(message);
    const head = { "content-type": "application/grpc-web+proto", "content-length": String(HEADER_BYTES + length + GRPC_WEB_OK.length) };
    res.writeHead(200, head);
    if (message instanceof Uint8Array) return void res.end(Buffer.concat([envelope(length), message, GRPC_WEB_OK]));
    return writeParts(res, concatParts(bufferParts([envelope(length)]), message, bufferParts([GRPC_WEB_OK])));
  },
  fail(res, e) {
    // Trailers-only: the status in the headers, no body.
    res.writeHead(200, { "content-type": "application/grpc-web+proto", "content-length": "0", ...statusHeaders(e) });
    res.end();
  },
};
