import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";

// Headers between client and instance. Hop-by-hop headers (RFC 9110 7.6.1) belong to one
// connection and are not forwarded; the router adds what gorouter added (reference 9.3).

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"];

function dropHopByHop(h: IncomingHttpHeaders, extra: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...h };
  const named = typeof h.connection === "string" ? h.connection.split(",").map((s) => s.trim().toLowerCase()) : [];
  for (const name of [...HOP_BY_HOP, ...extra, ...named]) delete out[name];
  return out;
}

/** The Host header's hostname: port stripped, lower case (IPv6 brackets removed). */
export function hostnameOf(host: string | undefined): string {
  if (!host) return "";
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") > 0 ? h.indexOf("]") : undefined);
  const colon = h.indexOf(":");
  return (colon >= 0 ? h.slice(0, colon) : h).replace(/\.$/, "");
}

const clientAddress = (req: IncomingMessage): string => (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");

/**
 * What goes to the instance. X-Vcap-Request-Id is kept when the client sent one (a request
 * passing through several routers keeps one id), X-Forwarded-Proto too (a TLS terminator in
 * front knows the scheme).
 */
export function requestHeaders(req: IncomingMessage, startMs: number, upgrade: boolean): OutgoingHttpHeaders {
  const h = dropHopByHop(req.headers, []);
  const xff = req.headers["x-forwarded-for"];
  const client = clientAddress(req);
  h["x-forwarded-for"] = xff ? `${Array.isArray(xff) ? xff.join(", ") : xff}, ${client}` : client;
  h["x-forwarded-proto"] ??= "http";
  h["x-request-start"] = String(startMs);
  h["x-vcap-request-id"] ??= randomUUID();
  if (upgrade) {
    h.connection = "Upgrade";
    h.upgrade = req.headers.upgrade;
  }
  return h;
}

/** What goes back to the client; the client's connection decides framing and keep-alive. */
export const responseHeaders = (h: IncomingHttpHeaders): OutgoingHttpHeaders => dropHopByHop(h, ["transfer-encoding"]);

/** An HTTP response head written raw on a socket (upgrades, errors before one). */
export function rawResponseHead(status: number, statusMessage: string, rawHeaders: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}
