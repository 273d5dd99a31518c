import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { createTaskApi } from "../api/task-api.js";
import { startReceptorServer, type TlsFiles } from "../api/http-server.js";
import { connectNats } from "../nats/connect.js";
import { openCellsBucket, openTasksBucket } from "../nats/buckets.js";
import { createCellRegistry, createTaskIndex, createTaskStore } from "../store/index.js";

export interface ReceptorOptions {
  natsUrl: string;
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
  /** How long to wait for NATS at start (0 or absent: for ever). */
  natsWaitMs?: number;
  /** Replicas of the buckets (a NATS cluster); see src/nats/buckets.ts. */
  replicas?: number;
}

export interface Receptor {
  readonly address: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The receptor process: the Task API on one address, state in NATS. Stateless; run N of them. */
export async function startReceptor(opts: ReceptorOptions): Promise<Receptor> {
  const nc: NatsConnection = await connectNats({ url: opts.natsUrl, name: "diego-receptor", logger: opts.logger, waitMs: opts.natsWaitMs });
  const buckets = { replicas: opts.replicas, logger: opts.logger };
  const kv = await openTasksBucket(nc, buckets);
  const store = createTaskStore(nc);
  const index = await createTaskIndex(kv, store, { warmJson: true, nc, logger: opts.logger });
  const cells = await createCellRegistry(await openCellsBucket(nc, opts.cellTtlMs, buckets), opts.cellTtlMs, { nc, logger: opts.logger });
  await Promise.all([index.ready(), cells.ready()]);
  const api = createTaskApi({ store, index, cells, nc, logger: opts.logger, streamBacklog: opts.streamBacklog });
  const server = await startReceptorServer({
    api,
    host: opts.host,
    port: opts.port,
    logger: opts.logger,
    tls: opts.tls,
    firstByteTimeoutMs: opts.firstByteTimeoutMs,
    streamKeepAliveMs: opts.streamKeepAliveMs,
  });
  opts.logger.info({ address: server.address, tasks: index.size() }, "receptor listening");
  return {
    address: server.address,
    port: server.port,
    async stop() {
      await server.close();
      await index.stop();
      cells.stop();
      await nc.drain().catch(() => undefined);
    },
  };
}
