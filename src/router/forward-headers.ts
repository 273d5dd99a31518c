import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";

// Headers between client and instance. Hop-by-hop headers (RFC 9110 7.6.1) belong to one
// connection and are not forwarded; the router adds what gorouter added (reference 9.3).
// Heads are flat [name, value, ...] lists in rawHeaders' format: one pass over what the parser
// gave, names and repeated fields kept as sent, and node writes such a list without building a
// header object per request (the proxy's hot path).

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"]);
// A request body is re-framed by node as its Transfer-Encoding says, so that one goes on; a
// response is framed for the client's connection by node alone.
const RESPONSE_DROPPED = new Set([...HOP_BY_HOP, "transfer-encoding"]);

/** Header names a Connection header lists (they belong to that hop only). */
function connectionNamed(raw: readonly string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== "connection") continue;
    for (const n of raw[i + 1]!.split(",")) (named ??= new Set()).add(n.trim().toLowerCase());
  }
  return named;
}

/** The Host header's hostname: port stripped, lower case (IPv6 brackets removed). */
export function hostnameOf(host: string | undefined): string {
  if (!host) return "";
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") > 0 ? h.indexOf("]") : undefined);
  const colon = h.indexOf(":");
  const name = colon >= 0 ? h.slice(0, colon) : h;
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

const clientAddress = (req: IncomingMessage): string => {
  const a = req.socket.remoteAddress ?? "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
};

/** Set per attempt by the proxy (the chosen instance), never taken from the client. */
const ROUTER_SET = new Set(["x-cf-applicationid", "x-cf-instanceid"]);

/**
 * What goes to the instance. X-Vcap-Request-Id is kept when the client sent one (a request
 * passing through several routers keeps one id), X-Forwarded-Proto too (a TLS terminator in
 * front knows the scheme); X-Forwarded-For gets the client appended.
 */
export function requestHeaders(req: IncomingMessage, startMs: number, upgrade: boolean): string[] {
  const raw = req.rawHeaders;
  const named = connectionNamed(raw);
  const out: string[] = [];
  let xff: string | undefined;
  let proto = false;
  let requestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || ROUTER_SET.has(lower) || named?.has(lower)) continue;
    if (lower === "x-forwarded-for") {
      xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
      continue;
    }
    if (lower === "x-forwarded-proto") proto = true;
    else if (lower === "x-vcap-request-id") requestId = true;
    out.push(name, raw[i + 1]!);
  }
  const client = clientAddress(req);
  out.push("X-Forwarded-For", xff === undefined ? client : `${xff}, ${client}`);
  if (!proto) out.push("X-Forwarded-Proto", "http");
  out.push("X-Request-Start", String(startMs));
  if (!requestId) out.push("X-Vcap-Request-Id", randomUUID());
  if (upgrade) out.push("Connection", "Upgrade", "Upgrade", req.headers.upgrade ?? "");
  return out;
}

/** What goes back to the client; the client's connection decides framing and keep-alive. */
export function responseHeaders(raw: readonly string[]): string[] {
  const named = connectionNamed(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (RESPONSE_DROPPED.has(lower) || named?.has(lower)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** An HTTP response head written raw on a socket (upgrades, errors before one). */
export function rawResponseHead(status: number, statusMessage: string, rawHeaders: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}
