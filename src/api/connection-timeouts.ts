import http2 from "node:http2";

// Slow clients must not hold connections for ever. node:http enforces headersTimeout and
// requestTimeout itself (once its connection tracking runs); node:http2 has neither, so an
// HTTP/2 session gets both here: a session with no request in progress for the headers
// timeout is closed (a client dribbling one HEADERS frame a byte at a time never opens a
// stream), and a stream whose request has not fully arrived within the request timeout is
// answered 408 and reset.

export interface ConnectionTimeouts {
  /** Longest wait for a request's headers (and for a first request on a new connection). */
  headersTimeoutMs: number;
  /** Longest wait for a whole request, headers and body. */
  requestTimeoutMs: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 60_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

export function watchHttp2Session(session: http2.ServerHttp2Session, t: ConnectionTimeouts): void {
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const startIdle = (): void => {
    idle = setTimeout(() => {
      // GOAWAY; with no stream open the session is destroyed at once.
      session.close();
      session.destroy();
    }, t.headersTimeoutMs);
  };
  startIdle();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(idle);
    const request = stream.endAfterHeaders ? undefined : setTimeout(() => requestTimedOut(stream), t.requestTimeoutMs);
    stream.once("close", () => {
      clearTimeout(request);
      if (--open === 0 && !session.closed && !session.destroyed) startIdle();
    });
  });
  session.once("close", () => clearTimeout(idle));
}

function requestTimedOut(stream: http2.ServerHttp2Stream): void {
  // remoteClose: the client finished sending (the handler may simply not have read it).
  if (stream.destroyed || stream.state.remoteClose) return;
  if (!stream.headersSent) {
    const body = JSON.stringify({ name: "InvalidRequest", message: "request not received within the request timeout" });
    stream.respond({ ":status": 408, "content-type": "application/json", "content-length": String(body.length) });
    stream.end(body, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    return;
  }
  stream.close(http2.constants.NGHTTP2_CANCEL);
}
