import http from "node:http";
import type http2 from "node:http2";
import net from "node:net";
import client from "prom-client";
import { collectProcessMetrics, registry } from "./metrics.js";

// Prometheus text: on the receptor's /metrics, and on --metrics-listen for the other processes.

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

/** prom-client's JSON form of a registry's metrics, as another process sends it. */
export type MetricsJson = Awaited<ReturnType<typeof registry.getMetricsAsJSON>>;

const childSources = new Set<() => Promise<MetricsJson>>();

/**
 * Adds a child process's metrics to this process's /metrics (`diego up`'s cell in a process of
 * its own): counters and histograms are summed, process gauges aggregated as prom-client does
 * for cluster workers. Returns the removal.
 */
export function addChildMetrics(source: () => Promise<MetricsJson>): () => void {
  childSources.add(source);
  return () => childSources.delete(source);
}

async function exposition(): Promise<string> {
  if (childSources.size === 0) return registry.metrics();
  const own = await registry.getMetricsAsJSON();
  // A child that does not answer leaves its metrics out of this scrape, not the scrape out.
  const children = await Promise.all([...childSources].map((s) => s().catch(() => [] as MetricsJson)));
  return client.AggregatorRegistry.aggregate([own, ...children]).metrics();
}

/** Answers GET /metrics; returns false for any other request. */
export function metricsHandler(req: Req, res: Res): boolean {
  if ((req.url ?? "/").split("?")[0] !== "/metrics") return false;
  collectProcessMetrics();
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "application/json" });
    res.end(JSON.stringify({ name: "InvalidRequest", message: `method ${req.method} is not allowed on /metrics` }));
    return true;
  }
  exposition().then(
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
