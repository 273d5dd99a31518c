import { Code } from "@connectrpc/connect";
import { GrpcCallError } from "../grpc/errors.js";
import type { Wire } from "../grpc/wire.js";
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
    res.writeHead(200, { "content-type": "application/proto", "content-length": String(message.length) });
    res.end(message);
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

