import { setMaxListeners } from "node:events";
import http from "node:http";
import https from "node:https";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import pino, { type Logger } from "pino";
import { connectNats, type NatsAuth, openTasksBucket, subjects, onNatsStatus, retryUntilDone } from "../nats/index.js";
import { createTaskIndex, createTaskStore, isCasConflict, nanosFromMs, nowNanos } from "../store/index.js";
import { runCallbackRound, type RoundDeps } from "./callback-round.js";
import { nextStep, wantsCallback, type CallbackPolicy } from "./callback-schedule.js";
import { DISPATCHER_DEFAULTS as D } from "./settings.js";
import { postCallback } from "./post-callback.js";
import { createWorkQueue } from "./work-queue.js";

// The dispatcher fires completion callbacks. It keeps a watch-fed view of the tasks, a timer per
// completed task with a callback URL (due now, after the retry interval, or at expiry), and a
// bounded pool of rounds. Several dispatchers may run: the COMPLETED -> RESOLVING
// compare-and-swap decides which one calls.

export interface DispatcherOptions {
  /** Either a URL to connect to, or a connection owned by the caller. */
  natsUrl?: string;
  /** Credentials and TLS for NATS. */
  natsAuth?: NatsAuth;
  nc?: NatsConnection;
  logger?: Logger;
  /** Per-call deadline (connect to last byte). */
  callbackTimeoutMs?: number;
  /** Wait after a failed round before the next one, measured from the round's end. */
  retryIntervalMs?: number;
  /** From first completion: afterwards the task is removed and never called again. */
  completedTtlMs?: number;
  /** Rounds in flight at once. */
  concurrency?: number;
  /** Calls per round while the answer is 503/504. */
  attemptsPerRound?: number;
  /** Replicas of the buckets this process creates (a NATS cluster). */
  replicas?: number;
  /** How long to wait for NATS at start (0 or absent: for ever). */
  natsWaitMs?: number;
}

export interface Dispatcher {
  /** Callback rounds in flight now. */
  inFlight(): number;
  stop(): Promise<void>;
}

export class DispatcherOptionsError extends Error {
  override readonly name = "DispatcherOptionsError";
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export async function startDispatcher(opts: DispatcherOptions): Promise<Dispatcher> {
  const logger = opts.logger ?? pino({ level: "silent" });
  const callbackTimeoutMs = opts.callbackTimeoutMs ?? D.callbackTimeout;
  const concurrency = opts.concurrency ?? D.callbackConcurrency;
  if (concurrency < 1) throw new DispatcherOptionsError("concurrency must be at least 1");
  const policy: CallbackPolicy = {
    retryIntervalNanos: nanosFromMs(opts.retryIntervalMs ?? D.callbackRetryInterval),
    completedTtlNanos: nanosFromMs(opts.completedTtlMs ?? D.completedTtl),
  };

  const nc = opts.nc ?? (await connectDispatcherNats(opts, logger));
  const ownsConnection = !opts.nc;
  const kv = await openTasksBucket(nc, { replicas: opts.replicas, logger });
  const store = createTaskStore(nc);
  const index = await createTaskIndex(kv, store, { nc, logger });

  const stopping = new AbortController();
  // Every call in flight listens for the stop signal.
  setMaxListeners(concurrency + 16, stopping.signal);
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: concurrency }),
    https: new https.Agent({ keepAlive: true, maxSockets: concurrency }),
  };
  const round: RoundDeps = {
    store,
    policy,
    attempts: opts.attemptsPerRound ?? 3,
    logger,
    signal: stopping.signal,
    post: (url, body) => postCallback(url, body, { timeoutMs: callbackTimeoutMs, signal: stopping.signal, agents }),
  };
  const queue = createWorkQueue(
    concurrency,
    async (guid) => void (await runCallbackRound(round, guid)),
    (guid, err) => logger.warn({ guid, err }, "callback round failed; the converger will return the task"),
  );

  const timers = new Map<string, NodeJS.Timeout>();
  const clearTimer = (guid: string): void => {
    clearTimeout(timers.get(guid));
    timers.delete(guid);
  };

  const reap = async (guid: string, revision: number): Promise<void> => {
    try {
      await retryUntilDone(() => store.remove(guid, revision), { logger, signal: stopping.signal, what: `remove expired task ${guid}` });
      logger.info({ guid }, "callback gave up: task expired and removed");
    } catch (err) {
      if (!isCasConflict(err)) logger.warn({ guid, err }, "could not remove expired task");
    }
  };

  /** Looks at one task and acts: call now, reap, or set a timer for later. */
  const consider = (guid: string): void => {
    clearTimer(guid);
    if (stopping.signal.aborted) return;
    const entry = index.get(guid);
    if (!entry || !wantsCallback(entry.record)) return;
    const now = nowNanos();
    const step = nextStep(entry.record, now, policy);
    if (step.kind === "call") queue.push(guid);
    else if (step.kind === "reap") void reap(guid, entry.revision);
    else {
      const delayMs = Math.min(MAX_TIMER_MS, Number((step.until - now) / 1_000_000n) + 1);
      timers.set(guid, setTimeout(() => consider(guid), delayMs));
    }
  };
  const considerAll = (): void => {
    for (const t of index.list()) consider(t.guid);
  };

  const unsubscribe = index.subscribe((guid) => consider(guid));
  await index.ready();
  considerAll();

  // The converger nudges tasks that look forgotten; an empty kick means "look at everything".
  const kicks: Subscription = nc.subscribe(subjects.dispatchKick, {
    callback: (err, msg) => {
      if (err) return;
      const guid = msg.string();
      if (guid) consider(guid);
      else considerAll();
    },
  });

  // Rounds due while NATS was away failed to start: look at everything again.
  const stopStatus = onNatsStatus(nc, (st) => {
    if (st.type === "reconnect") considerAll();
  });

  logger.info({ tasks: index.size(), concurrency }, "dispatcher started");

  return {
    inFlight: () => queue.active(),
    async stop() {
      if (stopping.signal.aborted) return;
      // Abort calls in flight: their rounds hand the tasks back, so another dispatcher retries.
      stopping.abort();
      stopStatus();
      kicks.unsubscribe();
      unsubscribe();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      await queue.drain();
      agents.http.destroy();
      agents.https.destroy();
      await index.stop();
      if (ownsConnection) await nc.drain().catch(() => undefined);
    },
  };
}

async function connectDispatcherNats(opts: DispatcherOptions, logger: Logger): Promise<NatsConnection> {
  if (!opts.natsUrl) throw new DispatcherOptionsError("startDispatcher needs natsUrl or nc");
  return connectNats({ url: opts.natsUrl, name: "diego-dispatcher", logger, auth: opts.natsAuth, waitMs: opts.natsWaitMs });
}
