import { Code } from "@connectrpc/connect";
import { GrpcCallError } from "./errors.js";

// gRPC's (and gRPC-Web's) framing: each message behind a 5-byte header (a flags byte and the
// length), and the deadline header.

export const HEADER_BYTES = 5;

/** The one length-prefixed message of a unary request. */
export function unwrapEnvelope(body: Buffer): Uint8Array {
  // Malformed input, not a fault of the server: INVALID_ARGUMENT (a 4xx where HTTP shows it).
  if (body.length < HEADER_BYTES) throw new GrpcCallError(Code.InvalidArgument, "protocol error: missing request message");
  if (body[0] !== 0) throw new GrpcCallError(Code.InvalidArgument, "protocol error: compressed message without grpc-encoding");
  const length = body.readUInt32BE(1);
  if (body.length !== HEADER_BYTES + length) {
    throw new GrpcCallError(Code.InvalidArgument, "protocol error: a unary request must hold exactly one message");
  }
  return body.subarray(HEADER_BYTES);
}

/** The 5-byte header of a message (or, with flags 0x80, of gRPC-Web's trailers) of `length` bytes. */
export function envelope(length: number, flags = 0): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES);
  out[0] = flags;
  out.writeUInt32BE(length, 1);
  return out;
}

export function wrap(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, HEADER_BYTES);
  return out;
}

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** The grpc-timeout header in milliseconds (gRPC over HTTP/2: up to 8 digits and a unit). */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = typeof value === "string" ? GRPC_TIMEOUT.exec(value) : null;
  if (!m) throw new GrpcCallError(Code.InvalidArgument, `invalid grpc-timeout '${String(value).slice(0, 20)}'`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}
