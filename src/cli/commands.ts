import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { startEmbeddedNats } from "../nats/embedded-server.js";
import type { TlsFiles } from "../api/http-server.js";
import { startReceptor } from "../receptor/start-receptor.js";
import { startDispatcher } from "../dispatcher/index.js";
import { startConverger } from "../converger/index.js";
import { runAuctioneer, runCell } from "./cell-commands.js";
import { InvalidSettingError, type Settings } from "./settings.js";

export interface Running {
  readyLine: string;
  stop(): Promise<void>;
}

/** `given`: the settings the user set (by flag or environment), not left at their defaults. */
type Command = (s: Settings, logger: Logger, given: ReadonlySet<string>) => Promise<Running>;

function splitHostPort(listen: string): { host: string; port: number } {
  const m = /^(.*):([0-9]+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new InvalidSettingError(`--listen must be HOST:PORT with a port up to 65535, got '${listen}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(m[2]) };
}

async function tlsFrom(s: Settings): Promise<TlsFiles | undefined> {
  const certFile = String(s.tlsCert);
  const keyFile = String(s.tlsKey);
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new InvalidSettingError("--tls-cert and --tls-key go together");
  return { cert: await readFile(certFile), key: await readFile(keyFile) };
}

function requireNats(s: Settings): string {
  const url = String(s.nats);
  if (!url) throw new InvalidSettingError("--nats (or DIEGO_NATS_URL) is required, e.g. nats://127.0.0.1:4222");
  return url;
}

/** Stops in reverse order of start. */
function stack(parts: Array<{ stop(): Promise<void> }>): () => Promise<void> {
  return async () => {
    for (const p of [...parts].reverse()) await p.stop();
  };
}

/**
 * How a process meets NATS: how long it waits for it at start, and the bucket replicas, passed
 * on only when the user set them (then an existing bucket is brought to that count).
 */
export function natsFleetOptions(s: Settings, given: ReadonlySet<string>): { natsWaitMs: number; replicas?: number } {
  return { natsWaitMs: Number(s.natsWait), ...(given.has("replicas") ? { replicas: Number(s.replicas) } : {}) };
}

const receptor: Command = async (s, logger, given) => {
  const { host, port } = splitHostPort(String(s.listen));
  const r = await startReceptor({
    natsUrl: requireNats(s),
    host,
    port,
    cellTtlMs: Number(s.cellTtl),
    logger,
    tls: await tlsFrom(s),
    ...natsFleetOptions(s, given),
  });
  return { readyLine: `diego receptor ready on ${r.address}`, stop: r.stop };
};

const dispatcherOptions = (s: Settings) => ({
  callbackTimeoutMs: Number(s.callbackTimeout),
  retryIntervalMs: Number(s.callbackRetryInterval),
  completedTtlMs: Number(s.completedTtl),
  concurrency: Number(s.callbackConcurrency),
});

const convergerOptions = (s: Settings) => ({
  convergeIntervalMs: Number(s.convergeInterval),
  kickIntervalMs: Number(s.kickInterval),
  pendingTimeoutMs: Number(s.pendingTimeout),
  claimTimeoutMs: Number(s.claimTimeout),
  completedTtlMs: Number(s.completedTtl),
  retryIntervalMs: Number(s.callbackRetryInterval),
  lockTtlMs: Number(s.lockTtl),
  cellTtlMs: Number(s.cellTtl),
});

const dispatcher: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const d = await startDispatcher({ natsUrl, logger, ...dispatcherOptions(s), ...natsFleetOptions(s, given) });
  return { readyLine: `diego dispatcher ready (nats ${natsUrl})`, stop: d.stop };
};

const converger: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const c = await startConverger({ natsUrl, logger, ...convergerOptions(s), ...natsFleetOptions(s, given) });
  return { readyLine: `diego converger ready (nats ${natsUrl})`, stop: c.stop };
};

const auctioneer: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const a = await runAuctioneer(s, natsUrl, logger, natsFleetOptions(s, given));
  return { readyLine: `diego auctioneer ready (nats ${natsUrl})`, stop: a.stop };
};

const cell: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const c = await runCell(s, natsUrl, logger, natsFleetOptions(s, given));
  return { readyLine: `diego cell ${c.cellId} ready (nats ${natsUrl})`, stop: c.stop };
};

/**
 * Debian's nats-server package starts a system service on 4222 where systemd runs; rather than
 * fail on the default port, `up` then takes a free one (the ready line prints the URL). A port
 * the user asked for explicitly is used as given.
 */
function natsPortChoice(s: Settings, given: ReadonlySet<string>): { port: number; freePortIfTaken: boolean } {
  return { port: Number(s.natsPort), freePortIfTaken: !given.has("natsPort") };
}

const up: Command = async (s, logger, given) => {
  const parts: Array<{ stop(): Promise<void> }> = [];
  let natsUrl = String(s.nats);
  try {
    if (!natsUrl) {
      const nats = await startEmbeddedNats({
        dataDir: path.resolve(String(s.dataDir), "nats"),
        ...natsPortChoice(s, given),
        logger: logger.child({ component: "nats-server" }),
      });
      parts.push(nats);
      natsUrl = nats.url;
    }
    const { host, port } = splitHostPort(String(s.listen));
    // One replica: `up` is one machine (its buckets are made with the default).
    const fleet = { natsWaitMs: Number(s.natsWait) };
    const r = await startReceptor({
      natsUrl,
      host,
      port,
      cellTtlMs: Number(s.cellTtl),
      logger: logger.child({ component: "receptor" }),
      tls: await tlsFrom(s),
      ...fleet,
    });
    parts.push(r);
    parts.push(await startDispatcher({ natsUrl, logger: logger.child({ component: "dispatcher" }), ...dispatcherOptions(s), ...fleet }));
    parts.push(await startConverger({ natsUrl, logger: logger.child({ component: "converger" }), ...convergerOptions(s), ...fleet }));
    parts.push(await runAuctioneer(s, natsUrl, logger.child({ component: "auctioneer" }), fleet));
    parts.push(await runCell(s, natsUrl, logger.child({ component: "cell" }), fleet));
    return { readyLine: `diego ready on ${r.address} (nats ${natsUrl})`, stop: stack(parts) };
  } catch (err) {
    await stack(parts)();
    throw err;
  }
};

export const commands: Record<string, Command> = { up, receptor, auctioneer, dispatcher, converger, cell };
