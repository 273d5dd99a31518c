import type { OutgoingHttpHeaders } from "node:http";
import type { Http2ServerResponse } from "node:http2";

// connect-es percent-encodes grpc-message with encodeURIComponent (":" becomes %3A, "," %2C),
// and @grpc/grpc-js decodes it with decodeURI, which leaves those escapes in place: Node clients
// would read "TaskNotFound%3A ...". The gRPC spec only asks to escape bytes outside 0x20-0x7E
// and "%"; re-encoding that way reads right in every client.

const HEADER = "grpc-message";

/**
 * Longest grpc-message sent, in bytes before encoding. grpc-js refuses metadata over 8 KiB, and
 * a trailer larger than the peer's frame size resets the stream instead of ending the call.
 */
const MAX_MESSAGE_BYTES = 2048;

/** Percent-encoding as the gRPC HTTP/2 spec defines it for grpc-message (cut to 2 KiB). */
export function encodeGrpcMessage(text: string): string {
  let bytes = Buffer.from(text, "utf8");
  if (bytes.length > MAX_MESSAGE_BYTES) bytes = Buffer.from(`${bytes.subarray(0, MAX_MESSAGE_BYTES).toString("utf8")}…`, "utf8");
  let out = "";
  for (const b of bytes) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function reencode(headers: OutgoingHttpHeaders | undefined): void {
  const value = headers?.[HEADER];
  if (typeof value !== "string") return;
  try {
    const text = decodeURIComponent(value);
    headers![HEADER] = encodeGrpcMessage(text);
    // Connect calls a request message that does not decode INTERNAL; it is the client's input.
    if (headers!["grpc-status"] === "13" && text.startsWith("parse binary")) headers!["grpc-status"] = "3";
  } catch {
    // Not something encodeURIComponent produced: leave it as it is.
  }
}

/** Rewrites grpc-message in the headers (trailers-only replies) and trailers of a gRPC reply. */
export function useSpecGrpcMessageEncoding(res: Http2ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (status: number, headers?: OutgoingHttpHeaders) => Http2ServerResponse;
  const addTrailers = res.addTrailers.bind(res);
  res.writeHead = ((status: number, headers?: OutgoingHttpHeaders) => {
    reencode(headers);
    return writeHead(status, headers);
  }) as Http2ServerResponse["writeHead"];
  res.addTrailers = (trailers: OutgoingHttpHeaders) => {
    reencode(trailers);
    addTrailers(trailers);
  };
}
