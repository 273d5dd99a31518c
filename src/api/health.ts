import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";

// Whether the receptor can serve: alive (/healthz) is the process answering at all; ready
// (/readyz, grpc.health.v1.Health) is NATS connected, the KV buckets answering and the task
// index's watch caught up. A load balancer sends no calls to a receptor that is not ready.

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

export interface ReadinessReport {
  ready: boolean;
  /** What is not ready, by name (empty when ready). */
  notReady: Record<string, string>;
}

export interface Readiness {
  check(): Promise<ReadinessReport>;
  /** Called with each new report when readiness may have changed; returns an unsubscribe. */
  subscribe(listener: (report: ReadinessReport) => void): () => void;
  stop(): void;
}

/** How long a bucket may take to answer a status request before it counts as not open. */
const BUCKET_TIMEOUT_MS = 2_000;
/** While someone watches health, readiness is checked this often (NATS events also trigger it). */
const WATCH_INTERVAL_MS = 1_000;

/** `buckets`: each KV bucket that must answer, by the name the report gives it (tasksBucket, ...). */
export function createReadiness(opts: { nc: NatsConnection; buckets: Record<string, KV>; indexReady: Promise<void> }): Readiness {
  let connected = true;
  let indexCurrent = false;
  let stopped = false;
  void opts.indexReady.then(() => (indexCurrent = true));
  const listeners = new Set<(r: ReadinessReport) => void>();
  let timer: NodeJS.Timeout | undefined;

  const bucketOpen = async (kv: KV): Promise<string | undefined> => {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((r) => (t = setTimeout(() => r(`no answer within ${BUCKET_TIMEOUT_MS} ms`), BUCKET_TIMEOUT_MS)));
    try {
      return await Promise.race([kv.status().then(() => undefined), timeout]);
    } catch (err) {
      return (err as Error).message;
    } finally {
      clearTimeout(t);
    }
  };

  const check = async (): Promise<ReadinessReport> => {
    const notReady: Record<string, string> = {};
    const natsUp = connected && !opts.nc.isClosed();
    if (!natsUp) notReady.nats = opts.nc.isClosed() ? "connection closed" : "disconnected, reconnecting";
    const buckets = Object.entries(opts.buckets);
    const problems = natsUp ? await Promise.all(buckets.map(([, kv]) => bucketOpen(kv))) : buckets.map(() => "NATS unreachable");
    buckets.forEach(([name], i) => {
      if (problems[i]) notReady[name] = problems[i];
    });
    if (!indexCurrent) notReady.taskIndex = "initial replay not finished";
    else if (!natsUp) notReady.taskIndex = "watch interrupted";
    return { ready: Object.keys(notReady).length === 0, notReady };
  };

  const notify = (): void => {
    if (listeners.size === 0 || stopped) return;
    void check().then((r) => {
      for (const l of listeners) l(r);
    });
  };

  void (async () => {
    for await (const s of opts.nc.status()) {
      if (s.type === "disconnect") connected = false;
      else if (s.type === "reconnect") connected = true;
      else continue;
      notify();
    }
  })();

  return {
    check,
    subscribe(listener) {
      listeners.add(listener);
      timer ??= setInterval(notify, WATCH_INTERVAL_MS);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      listeners.clear();
    },
  };
}

const sendJson = (res: Res, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)), "Cache-Control": "no-store" });
  res.end(text);
};

/** Answers GET/HEAD /healthz and /readyz; returns false for any other request. */
export function createProbeHandler(readiness: Readiness): (req: Req, res: Res) => boolean {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/healthz" && path !== "/readyz") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      sendJson(res, 405, { name: "InvalidRequest", message: `method ${req.method} is not allowed on ${path}` });
      return true;
    }
    if (path === "/healthz") {
      sendJson(res, 200, { status: "ok" });
      return true;
    }
    readiness.check().then(
      (r) => sendJson(res, r.ready ? 200 : 503, r.ready ? { status: "ready" } : { status: "not ready", notReady: r.notReady }),
      (err: unknown) => sendJson(res, 503, { status: "not ready", notReady: { check: (err as Error).message } }),
    );
    return true;
  };
}

/** grpc.health.v1.Health for "" (the whole server) and each of `services`. */
export function registerHealthService(router: ConnectRouter, readiness: Readiness, services: readonly string[]): void {
  const known = new Set(["", ...services]);
  const statusOf = (r: ReadinessReport): ServingStatus => (r.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  router.service(Health, {
    async check(req) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service '${req.service.slice(0, 200)}'`, Code.NotFound);
      return { status: statusOf(await readiness.check()) };
    },
    async *watch(req, ctx) {
      if (!known.has(req.service)) {
        yield { status: ServingStatus.SERVICE_UNKNOWN };
        await new Promise((r) => ctx.signal.addEventListener("abort", r, { once: true }));
        return;
      }
      // Each change is sent once; in between, the stream waits.
      const queue: ServingStatus[] = [];
      let wake: (() => void) | undefined;
      let last: ServingStatus | undefined;
      const push = (s: ServingStatus): void => {
        if (s === last) return;
        last = s;
        queue.push(s);
        wake?.();
      };
      const unsubscribe = readiness.subscribe((r) => push(statusOf(r)));
      const onAbort = (): void => wake?.();
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      try {
        push(statusOf(await readiness.check()));
        while (!ctx.signal.aborted) {
          const next = queue.shift();
          if (next !== undefined) yield { status: next };
          else await new Promise<void>((r) => (wake = r));
        }
      } finally {
        unsubscribe();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  });
}
