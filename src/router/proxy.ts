import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream";
import type { Logger } from "pino";
import { createAccessLogger } from "./access-log.js";
import type { Balancer } from "./balancer.js";
import { ConnectTimeoutError } from "./errors.js";
import { hostnameOf, rawResponseHead, requestHeaders, responseHeaders } from "./forward-headers.js";
import type { Endpoint, Pool } from "./route-table.js";

// The HTTP/1.1 reverse proxy. Bodies are piped both ways, never buffered; connections to
// instances are kept alive in one agent. A request goes to another instance when the chosen one
// refused (or did not accept) the connection, and also when a kept-alive connection turned out
// closed before a bodyless request got an answer: in both cases nothing reached the instance.
// A request with a body starts sending it only once connected, so a refusal never loses it.

export interface ProxyOptions {
  lookup(hostname: string): Pool | undefined;
  balancer: Balancer;
  logger: Logger;
  /** One log line per request. */
  accessLog: boolean;
  /** Instances tried per request (gorouter: 3). */
  maxAttempts?: number;
  connectTimeoutMs?: number;
}

export interface Proxy {
  server: http.Server;
  /** Closes idle connections to instances and writes the access lines still waiting. */
  close(): void;
}

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ETIMEDOUT"]);

type Failure = "unknown_route" | "no_endpoints" | "endpoint_failure" | "no_host";

const FAILURES: Record<Failure, { status: number; body: (host: string) => string }> = {
  no_host: { status: 400, body: () => "400 Bad Request: the request has no Host header naming a route.\n" },
  unknown_route: { status: 404, body: (h) => `404 Not Found: Requested route ('${h}') does not exist.\n` },
  no_endpoints: { status: 503, body: (h) => `503 Service Unavailable: Requested route ('${h}') has no available endpoints.\n` },
  endpoint_failure: { status: 502, body: () => "502 Bad Gateway: Registered endpoint failed to handle the request.\n" },
};

function failureHeaders(kind: Failure, body: string): Record<string, string | number> {
  return { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), "x-cf-routererror": kind, "x-content-type-options": "nosniff" };
}

const hasBody = (req: IncomingMessage): boolean =>
  req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");

export function createProxy(opts: ProxyOptions): Proxy {
  const { balancer, logger } = opts;
  const maxAttempts = opts.maxAttempts ?? 3;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 1024, scheduling: "lifo" });
  const accessLog = createAccessLogger(logger);

  const access = (req: IncomingMessage, host: string, status: number, startNs: bigint, ep: Endpoint | undefined, attempts: number, error?: string): void => {
    if (!opts.accessLog) return;
    accessLog.logger.info(
      {
        route: host,
        method: req.method,
        path: req.url,
        status,
        latency_ms: Number(process.hrtime.bigint() - startNs) / 1e6,
        process_guid: ep?.processGuid,
        index: ep?.index,
        instance: ep?.instanceGuid,
        endpoint: ep?.id,
        attempts,
        ...(error ? { error } : {}),
      },
      "access",
    );
  };

  /** An endpoint for the host, or the failure to answer with. */
  const choose = (host: string, tried: ReadonlySet<string>): Endpoint | Failure => {
    if (!host) return "no_host";
    const pool = opts.lookup(host);
    if (!pool) return "unknown_route";
    return balancer.pick(pool, tried) ?? (tried.size === 0 ? "no_endpoints" : "endpoint_failure");
  };

  /** Connect-phase bookkeeping shared by requests and upgrades. */
  const watchConnect = (preq: http.ClientRequest, ep: Endpoint, onConnected: () => void): (() => boolean) => {
    let connected = false;
    preq.on("socket", (s) => {
      if (!s.connecting) {
        // A kept-alive connection: nothing to wait for.
        connected = true;
        return onConnected();
      }
      const timer = setTimeout(() => preq.destroy(new ConnectTimeoutError(`no connection to ${ep.id} within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      s.once("connect", () => {
        connected = true;
        clearTimeout(timer);
        onConnected();
      });
      preq.once("close", () => clearTimeout(timer));
    });
    return () => connected;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const startNs = process.hrtime.bigint();
    const host = hostnameOf(req.headers.host);
    const headers = requestHeaders(req, Date.now(), false);
    const baseHeaders = headers.length;
    const withBody = hasBody(req);
    const tried = new Set<string>();
    let current: http.ClientRequest | undefined;
    res.once("close", () => {
      if (!res.writableFinished) current?.destroy();
    });

    const fail = (kind: Failure, ep: Endpoint | undefined, error?: string): void => {
      const f = FAILURES[kind];
      const body = f.body(host);
      if (!res.headersSent) res.writeHead(f.status, failureHeaders(kind, body)).end(body);
      else res.destroy();
      access(req, host, f.status, startNs, ep, tried.size, error);
    };

    const attempt = (): void => {
      const ep = choose(host, tried);
      if (typeof ep === "string") return fail(ep, undefined);
      tried.add(ep.id);
      const preq = backendRequest(req, ep, headers, baseHeaders, agent);
      current = preq;
      let bodyStarted = false;
      const connected = watchConnect(preq, ep, () => {
        if (!withBody) return;
        bodyStarted = true;
        req.pipe(preq);
      });
      if (!withBody) preq.end();

      preq.on("response", (pres) => {
        res.writeHead(pres.statusCode ?? 502, pres.statusMessage, responseHeaders(pres.rawHeaders));
        // pipe rather than pipeline: cheaper per request; errors are handled here, and a client
        // that goes away destroys the instance request (above), which ends this side too.
        let logged = false;
        const done = (error?: string): void => {
          if (logged) return;
          logged = true;
          access(req, host, pres.statusCode ?? 502, startNs, ep, tried.size, error);
        };
        pres.pipe(res);
        pres.once("error", (err) => {
          // Headers are gone: a failure now can only cut the client's connection short.
          res.destroy();
          done(`response cut: ${err.message}`);
        });
        res.once("finish", () => done());
      });
      preq.on("error", (err: NodeJS.ErrnoException) => {
        if (res.headersSent || res.destroyed) return;
        const refused = !connected() && (CONNECT_ERRORS.has(err.code ?? "") || err instanceof ConnectTimeoutError);
        if (refused) balancer.markFailed(ep);
        const staleKeepAlive = preq.reusedSocket && err.code === "ECONNRESET" && !bodyStarted;
        if ((refused || staleKeepAlive) && tried.size < maxAttempts) return attempt();
        fail("endpoint_failure", ep, err.message);
      });
    };
    attempt();
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const startNs = process.hrtime.bigint();
    const host = hostnameOf(req.headers.host);
    const headers = requestHeaders(req, Date.now(), true);
    const baseHeaders = headers.length;
    const tried = new Set<string>();
    socket.on("error", () => socket.destroy());

    const fail = (kind: Failure, ep: Endpoint | undefined, error?: string): void => {
      const f = FAILURES[kind];
      const body = f.body(host);
      const h = Object.entries({ ...failureHeaders(kind, body), connection: "close" }).flatMap(([k, v]) => [k, String(v)]);
      socket.end(rawResponseHead(f.status, http.STATUS_CODES[f.status] ?? "", h) + body);
      access(req, host, f.status, startNs, ep, tried.size, error);
    };

    const attempt = (): void => {
      const ep = choose(host, tried);
      if (typeof ep === "string") return fail(ep, undefined);
      tried.add(ep.id);
      // Its own connection: an upgraded one never goes back to a pool.
      const preq = backendRequest(req, ep, headers, baseHeaders, false);
      const connected = watchConnect(preq, ep, () => undefined);
      let answered = false;
      preq.end();
      preq.on("upgrade", (pres, psocket, phead) => {
        answered = true;
        socket.write(rawResponseHead(pres.statusCode ?? 101, pres.statusMessage ?? "Switching Protocols", pres.rawHeaders));
        if (phead.length > 0) socket.write(phead);
        if (head.length > 0) psocket.write(head);
        const done = (): void => {
          socket.destroy();
          psocket.destroy();
        };
        pipeline(psocket, socket, done);
        pipeline(socket, psocket, done);
        access(req, host, pres.statusCode ?? 101, startNs, ep, tried.size);
      });
      // The instance declined the upgrade: its answer goes back as it is.
      preq.on("response", (pres) => {
        answered = true;
        socket.write(rawResponseHead(pres.statusCode ?? 502, pres.statusMessage ?? "", pres.rawHeaders));
        pipeline(pres, socket, () => socket.destroy());
        access(req, host, pres.statusCode ?? 502, startNs, ep, tried.size);
      });
      preq.on("error", (err: NodeJS.ErrnoException) => {
        if (answered || socket.destroyed) return;
        const refused = !connected() && (CONNECT_ERRORS.has(err.code ?? "") || err instanceof ConnectTimeoutError);
        if (refused) balancer.markFailed(ep);
        if (refused && tried.size < maxAttempts) return attempt();
        fail("endpoint_failure", ep, err.message);
      });
    };
    attempt();
  };

  // No whole-request deadline: uploads and streams may take long; headers must come in 60 s.
  const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 60_000 }, handle);
  server.on("upgrade", upgrade);
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });
  return {
    server,
    close: () => {
      agent.destroy();
      accessLog.close();
    },
  };
}

/** The request to one instance: the client's headers (the first `base` entries) plus the instance's own. */
function backendRequest(req: http.IncomingMessage, ep: Endpoint, headers: string[], base: number, agent: http.Agent | false): http.ClientRequest {
  headers.length = base;
  headers.push("X-CF-ApplicationID", ep.app, "X-CF-InstanceID", ep.instanceGuid || ep.id);
  return http.request({ host: ep.host, port: ep.port, method: req.method, path: req.url, headers, agent, setHost: false });
}
