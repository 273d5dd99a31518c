import type { NatsConnection } from "@nats-io/transport-node";
import net from "node:net";
import type { Logger } from "pino";
import { createApiAuth, createLrpApi, createOperationsRoutes, createReadiness, createTaskApi, startReceptorServer, taskJsonView, type AuthOptions, type TlsFiles } from "../api/index.js";
import { registerTaskStates, metricsHandler, collectProcessMetrics } from "../metrics/index.js";
import { connectNats, type NatsAuth, openCellsBucket, openLrpBuckets, openTasksBucket } from "../nats/index.js";
import { createCellRegistry, createLrpStore, createTaskIndex, createTaskStore, startLrpWatch } from "../store/index.js";

export interface ReceptorOptions {
  natsUrl: string;
  /** Credentials and TLS for NATS. */
  natsAuth?: NatsAuth;
  host: string;
  port: number;
  cellTtlMs: number;
  logger: Logger;
  tls?: TlsFiles;
  /** A connection that sends nothing for this long is closed (default 60 s). */
  firstByteTimeoutMs?: number;
  /** Events or log lines a stream holds for a reader that does not keep up (default 10,000). */
  streamBacklog?: number;
  /** An idle REST event stream gets a comment line this often, for proxies (default 15 s). */
  streamKeepAliveMs?: number;
  /** Basic credentials and/or a bearer token file; none: the API is open. */
  auth?: AuthOptions;
  /** Origins allowed cross-origin calls (`*` for any); empty: no CORS answers. */
  corsOrigins?: readonly string[];
  /** Longest wait for a request's headers (default 60 s). */
  headersTimeoutMs?: number;
  /** Longest wait for a whole request, body included (default 5 min). */
  requestTimeoutMs?: number;
  /** How long to wait for NATS at start (0 or absent: for ever). */
  natsWaitMs?: number;
  /** Replicas of the buckets (a NATS cluster); see src/nats/buckets.ts. */
  replicas?: number;
}

export interface Receptor {
  readonly address: string;
  readonly port: number;
  /** Re-reads the bearer token file (what SIGHUP does); resolves with the number of tokens. */
  reloadAuth(): Promise<number>;
  stop(): Promise<void>;
}

/** 127.0.0.0/8, ::1, localhost: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (net.isIPv4(host)) return host.startsWith("127.");
  return host === "::1" || host === "::ffff:127.0.0.1";
}

/** The receptor process: the Task API on one address, state in NATS. Stateless; run N of them. */
export async function startReceptor(opts: ReceptorOptions): Promise<Receptor> {
  // First, so that a bad token file fails the start before anything connects.
  const auth = await createApiAuth(opts.auth ?? {});
  const nc: NatsConnection = await connectNats({ url: opts.natsUrl, name: "diego-receptor", logger: opts.logger, auth: opts.natsAuth, waitMs: opts.natsWaitMs });
  const buckets = { replicas: opts.replicas, logger: opts.logger };
  const kv = await openTasksBucket(nc, buckets);
  const store = createTaskStore(nc);
  const index = await createTaskIndex(kv, store, { warm: [taskJsonView], nc, logger: opts.logger });
  const cellsKv = await openCellsBucket(nc, opts.cellTtlMs, buckets);
  const lrpBuckets = await openLrpBuckets(nc, buckets);
  const readiness = createReadiness({ nc, buckets: { tasksBucket: kv, cellsBucket: cellsKv, desiredLrpsBucket: lrpBuckets.desired, actualLrpsBucket: lrpBuckets.actual }, indexReady: index.ready() });
  const unregisterTaskStates = registerTaskStates(index);
  collectProcessMetrics();
  const cells = await createCellRegistry(cellsKv, opts.cellTtlMs, { nc, logger: opts.logger });
  const lrpStore = createLrpStore(nc, lrpBuckets);
  // Feeds the LRP events of /v1/events and WatchLRPs.
  const lrpWatch = await startLrpWatch(lrpBuckets, { nc, logger: opts.logger });
  await Promise.all([index.ready(), cells.ready(), lrpWatch.ready()]);
  const api = createTaskApi({ store, index, cells, nc, logger: opts.logger, streamBacklog: opts.streamBacklog });
  const lrpApi = createLrpApi({ store: lrpStore, watch: lrpWatch, nc, logger: opts.logger, streamBacklog: opts.streamBacklog });
  const server = await startReceptorServer({
    api,
    lrpApi,
    host: opts.host,
    port: opts.port,
    logger: opts.logger,
    tls: opts.tls,
    firstByteTimeoutMs: opts.firstByteTimeoutMs,
    streamKeepAliveMs: opts.streamKeepAliveMs,
    auth,
    corsOrigins: opts.corsOrigins,
    headersTimeoutMs: opts.headersTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs,
    operations: createOperationsRoutes(readiness, metricsHandler),
  });
  opts.logger.info({ address: server.address, tasks: index.size(), auth: auth.enabled }, "receptor listening");
  if (!auth.enabled && !isLoopbackHost(opts.host)) {
    opts.logger.warn(
      { address: server.address },
      "the API listens on a non-loopback address without authentication: anyone who can reach it can run tasks and read their env (set --auth-user/--auth-password or --auth-token-file)",
    );
  }
  return {
    address: server.address,
    port: server.port,
    async reloadAuth() {
      const count = await auth.reload();
      opts.logger.info({ tokens: count }, "auth tokens reloaded");
      return count;
    },
    async stop() {
      await server.close();
      readiness.stop();
      unregisterTaskStates();
      await index.stop();
      cells.stop();
      lrpWatch.stop();
      lrpStore.close();
      await nc.drain().catch(() => undefined);
    },
  };
}
