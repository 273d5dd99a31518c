import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { startEmbeddedNats } from "../nats/embedded-server.js";
import { redactNatsUrl, type NatsAuth } from "../nats/connect-options.js";
import { ensureLocalCredentials } from "../nats/local-credentials.js";
import type { TlsFiles } from "../api/http-server.js";
import { AuthConfigError } from "../api/auth.js";
import { startReceptor as startReceptorProcess, type Receptor, type ReceptorOptions } from "../receptor/start-receptor.js";
import { startDispatcher } from "../dispatcher/index.js";
import { startConverger } from "../converger/index.js";
import { runAuctioneer, runCell } from "./cell-commands.js";
import { natsAuthFrom, natsAuthGiven } from "./nats-settings.js";
import { InvalidSettingError, type Settings } from "./settings.js";
import { InvalidMetricsListenError, startMetricsServer } from "../metrics/http.js";

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

/** A token file that cannot be read, or half of a Basic pair, is a setting the user got wrong. */
const startReceptor = (opts: ReceptorOptions): Promise<Receptor> =>
  startReceptorProcess(opts).catch((err: unknown) => {
    throw err instanceof AuthConfigError ? new InvalidSettingError(err.message) : err;
  });

/** The receptor's API settings: credentials, CORS and connection timeouts. */
const apiOptions = (s: Settings) => ({
  auth: { user: String(s.authUser), password: String(s.authPassword), tokenFile: String(s.authTokenFile) },
  corsOrigins: s.corsOrigins as string[],
  headersTimeoutMs: Number(s.headersTimeout),
  requestTimeoutMs: Number(s.requestTimeout),
});

/** SIGHUP re-reads the bearer token file; a file that cannot be read keeps the old tokens. */
function reloadAuthOnSighup(r: Receptor, logger: Logger): { stop(): Promise<void> } {
  const reload = (): void => {
    r.reloadAuth().catch((err: unknown) => logger.error({ err }, "auth tokens not reloaded; the previous ones stay in force"));
  };
  process.on("SIGHUP", reload);
  return {
    async stop() {
      process.off("SIGHUP", reload);
    },
  };
}

/**
 * How a process meets NATS: how long it waits for it at start, and the bucket replicas, passed
 * on only when the user set them (then an existing bucket is brought to that count).
 */
export function natsFleetOptions(s: Settings, given: ReadonlySet<string>): { natsWaitMs: number; replicas?: number } {
  return { natsWaitMs: Number(s.natsWait), ...(given.has("replicas") ? { replicas: Number(s.replicas) } : {}) };
}

/** What `receptor` and `up` both give the receptor: its address, TLS, API settings, cell TTL. */
const receptorSettings = async (s: Settings) => ({
  ...splitHostPort(String(s.listen)),
  cellTtlMs: Number(s.cellTtl),
  tls: await tlsFrom(s),
  ...apiOptions(s),
});

const receptor: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const natsAuth = await natsAuthFrom(s);
  const r = await startReceptor({
    natsUrl,
    natsAuth,
    logger,
    ...(await receptorSettings(s)),
    ...natsFleetOptions(s, given),
  });
  return { readyLine: `diego receptor ready on ${r.address}`, stop: stack([r, reloadAuthOnSighup(r, logger)]) };
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

/** With --metrics-listen, the process also serves /metrics there (stopped with it). */
async function withMetrics(s: Settings, running: Running): Promise<Running> {
  if (!s.metricsListen) return running;
  try {
    const m = await startMetricsServer(String(s.metricsListen));
    return { readyLine: `${running.readyLine}, metrics on ${m.address}`, stop: stack([running, m]) };
  } catch (err) {
    await running.stop();
    throw err instanceof InvalidMetricsListenError ? new InvalidSettingError(err.message) : err;
  }
}

const dispatcher: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const d = await startDispatcher({ natsUrl, natsAuth: await natsAuthFrom(s), logger, ...dispatcherOptions(s), ...natsFleetOptions(s, given) });
  return { readyLine: `diego dispatcher ready (nats ${redactNatsUrl(natsUrl)})`, stop: d.stop };
};

const converger: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const c = await startConverger({ natsUrl, natsAuth: await natsAuthFrom(s), logger, ...convergerOptions(s), ...natsFleetOptions(s, given) });
  return { readyLine: `diego converger ready (nats ${redactNatsUrl(natsUrl)})`, stop: c.stop };
};

const auctioneer: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const a = await runAuctioneer(s, natsUrl, await natsAuthFrom(s), logger, natsFleetOptions(s, given));
  return { readyLine: `diego auctioneer ready (nats ${redactNatsUrl(natsUrl)})`, stop: a.stop };
};

const cell: Command = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const c = await runCell(s, natsUrl, await natsAuthFrom(s), logger, natsFleetOptions(s, given));
  return { readyLine: `diego cell ${c.cellId} ready (nats ${redactNatsUrl(natsUrl)})`, stop: c.stop };
};

/**
 * Debian's nats-server package starts a system service on 4222 where systemd runs; rather than
 * fail on the default port, `up` then takes a free one (the ready line prints the URL). A port
 * the user asked for explicitly is used as given.
 */
function natsPortChoice(s: Settings, given: ReadonlySet<string>): { port: number; freePortIfTaken: boolean } {
  return { port: Number(s.natsPort), freePortIfTaken: !given.has("natsPort") };
}

/**
 * `up`'s embedded nats-server admits only the user in its data dir's credentials file (made on
 * the first start); flags for an external NATS make no sense without --nats.
 */
async function startLocalNats(s: Settings, given: ReadonlySet<string>, logger: Logger) {
  if (natsAuthGiven(s)) {
    throw new InvalidSettingError("--nats-creds and --nats-tls-* are for an external NATS given with --nats; diego up makes its own credentials for the nats-server it starts");
  }
  const dataDir = path.resolve(String(s.dataDir), "nats");
  const creds = await ensureLocalCredentials(dataDir);
  const nats = await startEmbeddedNats({ dataDir, auth: creds, ...natsPortChoice(s, given), logger: logger.child({ component: "nats-server" }) });
  return { nats, natsAuth: { credsFile: creds.file } satisfies NatsAuth };
}

const up: Command = async (s, logger, given) => {
  const parts: Array<{ stop(): Promise<void> }> = [];
  let natsUrl = String(s.nats);
  let natsAuth: NatsAuth;
  let credentialsNote = "";
  try {
    if (!natsUrl) {
      const local = await startLocalNats(s, given, logger);
      parts.push(local.nats);
      natsUrl = local.nats.url;
      natsAuth = local.natsAuth;
      credentialsNote = `, credentials ${local.natsAuth.credsFile}`;
    } else {
      natsAuth = await natsAuthFrom(s);
    }
    // One replica: `up` is one machine (its buckets are made with the default).
    const fleet = { natsWaitMs: Number(s.natsWait) };
    const r = await startReceptor({
      natsUrl,
      natsAuth,
      logger: logger.child({ component: "receptor" }),
      ...(await receptorSettings(s)),
      ...fleet,
    });
    parts.push(r);
    parts.push(reloadAuthOnSighup(r, logger.child({ component: "receptor" })));
    parts.push(await startDispatcher({ natsUrl, natsAuth, logger: logger.child({ component: "dispatcher" }), ...dispatcherOptions(s), ...fleet }));
    parts.push(await startConverger({ natsUrl, natsAuth, logger: logger.child({ component: "converger" }), ...convergerOptions(s), ...fleet }));
    parts.push(await runAuctioneer(s, natsUrl, natsAuth, logger.child({ component: "auctioneer" }), fleet));
    parts.push(await runCell(s, natsUrl, natsAuth, logger.child({ component: "cell" }), fleet));
    return { readyLine: `diego ready on ${r.address} (nats ${redactNatsUrl(natsUrl)}${credentialsNote})`, stop: stack(parts) };
  } catch (err) {
    await stack(parts)();
    throw err;
  }
};

const metered = (c: Command): Command => async (s, logger, given) => withMetrics(s, await c(s, logger, given));

export const commands: Record<string, Command> = {
  up,
  receptor,
  auctioneer: metered(auctioneer),
  dispatcher: metered(dispatcher),
  converger: metered(converger),
  cell: metered(cell),
};
