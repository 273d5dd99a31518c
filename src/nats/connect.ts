import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { natsConnectOptions, natsRefusal, NatsRefusedError, redactNatsUrl, type NatsAuth } from "./connect-options.js";
import { backoffMs } from "./retry.js";
import { countReconnects } from "../metrics/index.js";

export interface NatsConnectOptions {
  url: string;
  name: string;
  logger?: Logger;
  /** Credentials and TLS (connect-options.ts). */
  auth?: NatsAuth;
  /**
   * How long to wait for NATS at start, retrying with backoff and a log line, before giving up
   * with NatsUnreachableError. Undefined or 0: wait for ever (a fleet may start in any order).
   */
  waitMs?: number;
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
  const nc = await waitForNats(
    async () =>
      connect({
        ...(await natsConnectOptions(opts.url, opts.auth)),
        name: opts.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        timeout: 5_000,
        // Each request would otherwise build two Error objects (stack traces) up front: a tenth of
        // the receptor's CPU per task create.
        noAsyncTraces: true,
      }).catch((err: unknown) => {
        // Refused credentials or TLS will not get better by waiting: that is thrown at once.
        throw natsRefusal(opts.url, opts.auth ?? {}, err) ?? err;
      }),
    opts,
  );
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

/**
 * Runs the first connect until it succeeds: a process started before NATS (or during an outage)
 * waits for it instead of exiting. Kept apart from the connect options so either can change alone.
 */
export async function waitForNats<T>(attempt: () => Promise<T>, opts: Pick<NatsConnectOptions, "url" | "logger" | "waitMs">): Promise<T> {
  const began = Date.now();
  for (let n = 0; ; n++) {
    try {
      const connected = await attempt();
      if (n > 0) opts.logger?.info({ url: opts.url, attempts: n + 1 }, "connected to NATS");
      return connected;
    } catch (err) {
      if (err instanceof NatsRefusedError) throw err;
      if (opts.waitMs && Date.now() - began >= opts.waitMs) throw new NatsUnreachableError(opts.url, err);
      // The first failure and then about every ten seconds.
      if (n % 10 === 0) {
        opts.logger?.warn({ url: opts.url, err: (err as Error).message }, "NATS unreachable; waiting for it (retrying)");
      }
      let wait = backoffMs(n, 250, 2_000);
      if (opts.waitMs) wait = Math.max(0, Math.min(wait, began + opts.waitMs - Date.now()));
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
