import http from "node:http";
import type http2 from "node:http2";
import net from "node:net";
import { collectProcessMetrics, registry } from "./metrics.js";

// Prometheus text: on the receptor's /metrics, and on --metrics-listen for the other processes.

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

/** Answers GET /metrics; returns false for any other request. */
export function metricsHandler(req: Req, res: Res): boolean {
  if ((req.url ?? "/").split("?")[0] !== "/metrics") return false;
  collectProcessMetrics();
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "application/json" });
    res.end(JSON.stringify({ name: "InvalidRequest", message: `method ${req.method} is not allowed on /metrics` }));
    return true;
  }
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { "Content-Type": registry.contentType, "Content-Length": String(Buffer.byteLength(text)) });
      res.end(req.method === "HEAD" ? "" : text);
    },
    (err: unknown) => {
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(`metrics collection failed: ${(err as Error).message}\n`);
    },
  );
  return true;
}

export class InvalidMetricsListenError extends Error {
  override readonly name = "InvalidMetricsListenError";
}

export interface MetricsServer {
  readonly address: string;
  stop(): Promise<void>;
}

/** Serves /metrics alone on HOST:PORT (for processes without the API). */
export async function startMetricsServer(listen: string): Promise<MetricsServer> {
  const m = /^(.*):([0-9]+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new InvalidMetricsListenError(`--metrics-listen must be HOST:PORT with a port up to 65535, got '${listen}'`);
  const host = m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0";
  collectProcessMetrics();
  const server = http.createServer((req, res) => {
    if (metricsHandler(req, res)) return;
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ name: "InvalidRequest", message: "only /metrics is served here" }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(m[2]), host, () => resolve());
  });
  const a = server.address() as net.AddressInfo;
  return {
    address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
