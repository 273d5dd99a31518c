import { Code } from "@connectrpc/connect";
import { GrpcCallError } from "../grpc/errors.js";
import type { Wire } from "../grpc/wire.js";
import { bufferParts, partsLength, writeParts } from "../http/write-parts.js";
import { connectErrorBody, connectHttpStatus } from "./errors.js";

/** A unary Connect call in protobuf binary, on the fast path (grpc/unary.ts). */
export const connectWire: Wire = {
  framingBytes: 0,
  unwrap: (body) => body,
  timeoutMs(req) {
    const v = req.headers["connect-timeout-ms"];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !/^\d{1,10}$/.test(v)) throw new GrpcCallError(Code.InvalidArgument, `invalid connect-timeout-ms '${String(v).slice(0, 20)}'`);
    return Number(v);
  },
  ok(res, message) {
    const parts = message instanceof Uint8Array ? bufferParts([message]) : message;
    res.writeHead(200, { "content-type": "application/proto", "content-length": String(partsLength(parts)) });
    if (message instanceof Uint8Array) return void res.end(message);
    return writeParts(res, parts);
  },
  fail(res, e) {
    const body = connectErrorBody(e.code, e.message);
    res.writeHead(connectHttpStatus(e.code, e.errorName), {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      ...(e.errorName ? { "diego-error-name": e.errorName } : {}),
    });
    res.end(body);
  },
};

