import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { natsConnectOptions, natsRefusal, redactNatsUrl, type NatsAuth } from "./connect-options.js";
import { countReconnects } from "../metrics/nats-metrics.js";

export interface NatsConnectOptions {
  url: string;
  name: string;
  logger?: Logger;
  /** Credentials and TLS (connect-options.ts). */
  auth?: NatsAuth;
}

/** The first connection failed: the message names the URL, which nats.js's own does not. */
export class NatsUnreachableError extends Error {
  override readonly name = "NatsUnreachableError";
  /** Without any password it held: logs show this field. */
  readonly url: string;
  constructor(url: string, cause: unknown) {
    super(`cannot connect to NATS at ${redactNatsUrl(url)}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.url = redactNatsUrl(url);
  }
}

/** Connects with unlimited reconnects: a restarted nats-server must not take a process down. */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const nc = await connect({
    ...(await natsConnectOptions(opts.url, opts.auth)),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 5_000,
    // Each request would otherwise build two Error objects (stack traces) up front: a tenth of
    // the receptor's CPU per task create.
    noAsyncTraces: true,
  }).catch((err: unknown) => {
    throw natsRefusal(opts.url, opts.auth ?? {}, err) ?? new NatsUnreachableError(opts.url, err);
  });
  countReconnects(nc, opts.name);
  if (opts.logger) {
    const logger = opts.logger;
    void (async () => {
      for await (const s of nc.status()) {
        // Draining on shutdown also reports a disconnect; only unplanned ones are worth a warning.
        if (nc.isDraining() || nc.isClosed()) continue;
        if (s.type === "disconnect" || s.type === "reconnect") logger.warn({ nats: s.type }, "nats connection");
      }
    })();
  }
  return nc;
}
