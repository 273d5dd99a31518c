import type http from "node:http";
import type http2 from "node:http2";

// Cross-origin access for browser clients (REST, Connect, gRPC-Web), off unless origins are
// configured. A preflight is answered here, before authentication: browsers never send
// credentials with one.

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

const ALLOW_METHODS = "GET, HEAD, POST, DELETE, OPTIONS";
/** Request headers a browser client of any of the three protocols sends. */
const ALLOW_HEADERS = [
  "authorization",
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "grpc-timeout",
  "x-grpc-web",
  "x-user-agent",
].join(", ");
/** Response headers a script may read: the gRPC-Web status and the error name among them. */
const EXPOSE_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin", "diego-error-name", "www-authenticate"].join(", ");
const PREFLIGHT_MAX_AGE_S = "600";

export type CorsHandler = (req: Req, res: Res) => "preflight-answered" | "continue";

/** `origins`: allowed origins (`https://app.example.com`), or `*` for any. Empty: CORS off. */
export function createCors(origins: readonly string[]): CorsHandler {
  if (origins.length === 0) return () => "continue";
  const any = origins.includes("*");
  const allowed = new Set(origins.map((o) => o.replace(/\/+$/, "").toLowerCase()));
  return (req, res) => {
    const origin = req.headers.origin;
    if (typeof origin !== "string") return "continue";
    const ok = any || allowed.has(origin.toLowerCase());
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (ok) {
      res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
      res.setHeader("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
    if (!any) res.setHeader("Vary", "Origin");
    if (!preflight) return "continue";
    req.resume();
    if (ok) {
      res.writeHead(204, {
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_S,
        "Content-Length": "0",
      });
      res.end();
    } else {
      const body = JSON.stringify({ name: "InvalidRequest", message: `origin ${origin.slice(0, 100)} is not allowed` });
      res.writeHead(403, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) });
      res.end(body);
    }
    return "preflight-answered";
  };
}
