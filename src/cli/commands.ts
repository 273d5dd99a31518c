import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { ensureLocalCredentials, redactNatsUrl, startEmbeddedNats, type NatsAuth, type natsConnectionSettings, type replicaSettings } from "../nats/index.js";
import { AuthConfigError, type TlsFiles } from "../api/index.js";
import { startReceptor as startReceptorProcess, type Receptor, type ReceptorOptions, type receptorSettings } from "../receptor/index.js";
import { startDispatcher, type dispatcherSettings } from "../dispatcher/index.js";
import { startConverger, type convergerSettings } from "../converger/index.js";
import { InvalidMetricsListenError, startMetricsServer } from "../metrics/index.js";
import { isRouterWorker, registersRoutes, reportReady, RouterListenError, RouterProcessError, startRouter, startRouterProcesses, type routerSettings } from "../router/index.js";
import type { SettingsOf } from "../settings/index.js";
import { crashPolicyFrom, type cellTtlSettings } from "../store/index.js";
import { runAuctioneer, runCell } from "./cell-commands.js";
import { startForkedCell } from "./forked-cell.js";
import type { ParsedRun } from "./parse-args.js";
import { natsAuthFrom, natsAuthGiven } from "./nats-settings.js";
import { InvalidSettingError, type CommandSettings, type ServerCommand } from "./settings.js";

export interface Running {
  readyLine: string;
  stop(): Promise<void>;
  /** Longest stop() may take before the process exits anyway (default 15 s). */
  stopBudgetMs?: number;
}

/** `given`: the settings the user set (by flag or environment), not left at their defaults. */
type Command<C extends ServerCommand> = (s: CommandSettings<C>, logger: Logger, given: ReadonlySet<string>) => Promise<Running>;

type NatsSettings = SettingsOf<typeof natsConnectionSettings>;
type ReceptorSettings = SettingsOf<typeof receptorSettings & typeof cellTtlSettings>;
type FleetSettings = SettingsOf<typeof natsConnectionSettings & typeof replicaSettings>;

function splitHostPort(listen: string): { host: string; port: number } {
  const m = /^(.*):([0-9]+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new InvalidSettingError(`--listen must be HOST:PORT with a port up to 65535, got '${listen}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(m[2]) };
}

async function tlsFrom(s: Pick<ReceptorSettings, "tlsCert" | "tlsKey">): Promise<TlsFiles | undefined> {
  const certFile = s.tlsCert;
  const keyFile = s.tlsKey;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new InvalidSettingError("--tls-cert and --tls-key go together");
  return { cert: await readFile(certFile), key: await readFile(keyFile) };
}

function requireNats(s: Pick<NatsSettings, "nats">): string {
  const url = s.nats;
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
const apiOptions = (s: ReceptorSettings) => ({
  auth: { user: s.authUser, password: s.authPassword, tokenFile: s.authTokenFile },
  corsOrigins: s.corsOrigins,
  headersTimeoutMs: s.headersTimeout,
  requestTimeoutMs: s.requestTimeout,
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
export function natsFleetOptions(s: FleetSettings, given: ReadonlySet<string>): { natsWaitMs: number; replicas?: number } {
  return { natsWaitMs: s.natsWait, ...(given.has("replicas") ? { replicas: s.replicas } : {}) };
}

/** What `receptor` and `up` both give the receptor: its address, TLS, API settings, cell TTL. */
const receptorOptions = async (s: ReceptorSettings) => ({
  ...splitHostPort(s.listen),
  cellTtlMs: s.cellTtl,
  tls: await tlsFrom(s),
  ...apiOptions(s),
});

const receptor: Command<"receptor"> = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const natsAuth = await natsAuthFrom(s);
  const r = await startReceptor({
    natsUrl,
    natsAuth,
    logger,
    ...(await receptorOptions(s)),
    ...natsFleetOptions(s, given),
  });
  return { readyLine: `diego receptor ready on ${r.address}`, stop: stack([r, reloadAuthOnSighup(r, logger)]) };
};

const dispatcherOptions = (s: SettingsOf<typeof dispatcherSettings>) => ({
  callbackTimeoutMs: s.callbackTimeout,
  retryIntervalMs: s.callbackRetryInterval,
  completedTtlMs: s.completedTtl,
  concurrency: s.callbackConcurrency,
});

const convergerOptions = (s: SettingsOf<typeof convergerSettings>) => ({
  convergeIntervalMs: s.convergeInterval,
  kickIntervalMs: s.kickInterval,
  pendingTimeoutMs: s.pendingTimeout,
  claimTimeoutMs: s.claimTimeout,
  completedTtlMs: s.completedTtl,
  retryIntervalMs: s.callbackRetryInterval,
  lockTtlMs: s.lockTtl,
  cellTtlMs: s.cellTtl,
  crashPolicy: crashPolicyFrom(s),
  staleUnclaimedMs: s.staleUnclaimedTimeout,
  evacuationTimeoutMs: s.evacuationTimeout,
});

/** What `router` and `up` give the router. */
function routerOptions(s: SettingsOf<typeof routerSettings>) {
  const m = /^(.*):([0-9]+)$/.exec(s.routerListen);
  if (!m || Number(m[2]) > 65535) throw new InvalidSettingError(`--router-listen must be HOST:PORT with a port up to 65535, got '${s.routerListen}'`);
  return {
    host: m[1]!.replace(/^\[|\]$/g, "") || "0.0.0.0",
    port: Number(m[2]),
    register: s.routerRegister === "on",
    registerIntervalMs: s.routerRegisterInterval,
    accessLog: s.routerAccessLog === "on",
  };
}

const startRouterProcess = (opts: Parameters<typeof startRouter>[0]) =>
  startRouter(opts).catch((err: unknown) => {
    throw err instanceof RouterListenError ? new InvalidSettingError(err.message) : err;
  });

/** With --metrics-listen, the process also serves /metrics there (stopped with it). */
async function withMetrics(s: { metricsListen: string }, running: Running): Promise<Running> {
  if (!s.metricsListen) return running;
  try {
    const m = await startMetricsServer(s.metricsListen);
    return { readyLine: `${running.readyLine}, metrics on ${m.address}`, stop: stack([running, m]), stopBudgetMs: running.stopBudgetMs };
  } catch (err) {
    await running.stop();
    throw err instanceof InvalidMetricsListenError ? new InvalidSettingError(err.message) : err;
  }
}

const dispatcher: Command<"dispatcher"> = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const d = await startDispatcher({ natsUrl, natsAuth: await natsAuthFrom(s), logger, ...dispatcherOptions(s), ...natsFleetOptions(s, given) });
  return { readyLine: `diego dispatcher ready (nats ${redactNatsUrl(natsUrl)})`, stop: d.stop };
};

const converger: Command<"converger"> = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const c = await startConverger({ natsUrl, natsAuth: await natsAuthFrom(s), logger, ...convergerOptions(s), ...natsFleetOptions(s, given) });
  return { readyLine: `diego converger ready (nats ${redactNatsUrl(natsUrl)})`, stop: c.stop };
};

const auctioneer: Command<"auctioneer"> = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const a = await runAuctioneer(s, natsUrl, await natsAuthFrom(s), logger, natsFleetOptions(s, given));
  return { readyLine: `diego auctioneer ready (nats ${redactNatsUrl(natsUrl)})`, stop: a.stop };
};

const router: Command<"router"> = async (s, logger) => {
  const natsUrl = requireNats(s);
  const options = routerOptions(s);
  if (s.routerProcesses > 1 && !isRouterWorker()) {
    // Supervisor: forks the routers (this command again, in each of them: the branch below).
    const p = await startRouterProcesses(s.routerProcesses, logger).catch((err: unknown) => {
      throw err instanceof RouterProcessError ? new InvalidSettingError(err.message) : err;
    });
    return { readyLine: `diego router ready on ${p.address} (nats ${redactNatsUrl(natsUrl)}, ${s.routerProcesses} processes)`, stop: p.stop };
  }
  const r = await startRouterProcess({ natsUrl, natsAuth: await natsAuthFrom(s), logger, ...options, register: options.register && registersRoutes(), natsWaitMs: s.natsWait });
  if (isRouterWorker()) reportReady(r.address);
  return { readyLine: `diego router ready on ${r.address} (nats ${redactNatsUrl(natsUrl)})`, stop: r.stop };
};

const cell: Command<"cell"> = async (s, logger, given) => {
  const natsUrl = requireNats(s);
  const c = await runCell(s, natsUrl, await natsAuthFrom(s), logger, natsFleetOptions(s, given), given);
  // SIGTERM (a rolling update) drains: LRP instances move to other cells first.
  const stop = async (): Promise<void> => {
    await c.evacuate();
    await c.stop();
  };
  return { readyLine: `diego cell ${c.cellId} ready (nats ${redactNatsUrl(natsUrl)})`, stop, stopBudgetMs: s.evacuationTimeout + 15_000 };
};

/**
 * Debian's nats-server package starts a system service on 4222 where systemd runs; rather than
 * fail on the default port, `up` then takes a free one (the ready line prints the URL). A port
 * the user asked for explicitly is used as given.
 */
function natsPortChoice(s: CommandSettings<"up">, given: ReadonlySet<string>): { port: number; freePortIfTaken: boolean } {
  return { port: s.natsPort, freePortIfTaken: !given.has("natsPort") };
}

/**
 * `up`'s embedded nats-server admits only the user in its data dir's credentials file (made on
 * the first start); flags for an external NATS make no sense without --nats.
 */
async function startLocalNats(s: CommandSettings<"up">, given: ReadonlySet<string>, logger: Logger) {
  if (natsAuthGiven(s)) {
    throw new InvalidSettingError("--nats-creds and --nats-tls-* are for an external NATS given with --nats; diego up makes its own credentials for the nats-server it starts");
  }
  const dataDir = path.resolve(s.dataDir, "nats");
  const creds = await ensureLocalCredentials(dataDir);
  const nats = await startEmbeddedNats({ dataDir, auth: creds, ...natsPortChoice(s, given), logger: logger.child({ component: "nats-server" }) });
  return { nats, natsAuth: { credsFile: creds.file } satisfies NatsAuth };
}

const up: Command<"up"> = async (s, logger, given) => {
  const parts: Array<{ stop(): Promise<void> }> = [];
  let natsUrl = s.nats;
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
    const fleet = { natsWaitMs: s.natsWait };
    const r = await startReceptor({
      natsUrl,
      natsAuth,
      logger: logger.child({ component: "receptor" }),
      ...(await receptorOptions(s)),
      ...fleet,
    });
    parts.push(r);
    parts.push(reloadAuthOnSighup(r, logger.child({ component: "receptor" })));
    parts.push(await startDispatcher({ natsUrl, natsAuth, logger: logger.child({ component: "dispatcher" }), ...dispatcherOptions(s), ...fleet }));
    parts.push(await startConverger({ natsUrl, natsAuth, logger: logger.child({ component: "converger" }), ...convergerOptions(s), ...fleet }));
    parts.push(await runAuctioneer(s, natsUrl, natsAuth, logger.child({ component: "auctioneer" }), fleet));
    parts.push(
      s.cellProcess === "own"
        ? await startForkedCell({ settings: s, given: [...given], natsUrl, natsAuth, fleet, logLevel: s.logLevel, logFormat: s.logFormat }, logger.child({ component: "cell" }))
        : await runCell(s, natsUrl, natsAuth, logger.child({ component: "cell" }), fleet, given),
    );
    const router = await startRouterProcess({ natsUrl, natsAuth, logger: logger.child({ component: "router" }), ...routerOptions(s), ...fleet, freePortIfTaken: !given.has("routerListen") });
    parts.push(router);
    return { readyLine: `diego ready on ${r.address} (nats ${redactNatsUrl(natsUrl)}${credentialsNote}, router on ${router.address})`, stop: stack(parts) };
  } catch (err) {
    await stack(parts)();
    throw err;
  }
};

type MeteredCommand = "auctioneer" | "dispatcher" | "converger" | "cell";
const metered =
  <C extends MeteredCommand>(c: Command<C>): Command<C> =>
  async (s, logger, given) =>
    withMetrics(s, await c(s, logger, given));

const commands: { [C in ServerCommand]: Command<C> } = {
  up,
  receptor,
  auctioneer: metered(auctioneer),
  dispatcher: metered(dispatcher),
  converger: metered(converger),
  cell: metered(cell),
  router,
};

/** Starts the parsed command with its settings. */
export function runCommand(parsed: ParsedRun, logger: Logger): Promise<Running> {
  // TypeScript cannot correlate the command with its settings through the union; parseArgs did.
  const run = commands[parsed.command] as Command<ServerCommand>;
  return run(parsed.settings as never, logger, parsed.given as ReadonlySet<string>);
}
