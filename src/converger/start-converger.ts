import { randomUUID } from "node:crypto";
import os from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import pino, { type Logger } from "pino";
import type { CrashPolicy } from "../model/index.js";
import { connectNats, type NatsAuth, openCellsBucket, openLocksBucket, openLrpBuckets, openTasksBucket, createLeaderLock } from "../nats/index.js";
import { createCellRegistry, createLrpStore, createTaskIndex, createTaskStore, crashPolicyFrom, nanosFromMs } from "../store/index.js";
import { watchForLostCells } from "./cell-watch.js";
import { confirmHeldTasks } from "./confirm-held.js";
import { convergePass, type PassReport } from "./converge-pass.js";
import type { ConvergeLimits, LiveCells } from "./decide.js";
import { ConvergerOptionsError } from "./errors.js";
import type { LrpConvergeSettings } from "./lrp-decide.js";
import { lrpConvergePass, type LrpCells, type LrpPassReport } from "./lrp-pass.js";
import { createDueTimer, watchCrashes } from "./lrp-wake.js";
import { CONVERGER_DEFAULTS as D } from "./settings.js";

// The converger: timeouts, reaping, lost cells, re-auction, for tasks and LRPs. One instance acts
// at a time (leader lock "converger"); the others stand by with the same watch-fed view, ready to
// take over. Each pass converges tasks and LRPs side by side (as 2015 did), on one interval; a
// crash backoff, stale UNCLAIMED record or evacuation timeout that ends sooner gets a pass of its
// own (lrp-wake.ts).

export interface ConvergerOptions {
  natsUrl?: string;
  /** Credentials and TLS for NATS. */
  natsAuth?: NatsAuth;
  nc?: NatsConnection;
  logger?: Logger;
  /** Identifies this instance in the leader lock. */
  holderId?: string;
  convergeIntervalMs?: number;
  /** A PENDING task untouched this long is re-auctioned; a RESOLVING one is handed back. */
  kickIntervalMs?: number;
  pendingTimeoutMs?: number;
  claimTimeoutMs?: number;
  completedTtlMs?: number;
  /** A COMPLETED task with a callback untouched this long gets a dispatcher kick. */
  retryIntervalMs?: number;
  lockTtlMs?: number;
  cellTtlMs?: number;
  /** A CLAIMED or RUNNING task untouched this long is checked with its cell (default 2 cell TTLs). */
  confirmHeldAfterMs?: number;
  /** Replicas of the buckets this process creates (a NATS cluster). */
  replicas?: number;
  /** How long to wait for NATS at start (0 or absent: for ever). */
  natsWaitMs?: number;
  /** How often the cell view is checked for cells that went away (a pass follows at once). */
  cellCheckMs?: number;
  /** The LRP crash restart policy (default 2015's). */
  crashPolicy?: CrashPolicy;
  /** An LRP instance UNCLAIMED longer than this is auctioned again. */
  staleUnclaimedMs?: number;
  /** An evacuating LRP copy older than this is dropped. */
  evacuationTimeoutMs?: number;
}

export interface Converger {
  isLeader(): boolean;
  /** Passes this instance has run. */
  passes(): number;
  /** Runs a pass now if this instance is the leader (tests, operators). */
  convergeNow(): Promise<PassReport | undefined>;
  /** What the last LRP pass did (undefined before one). */
  lastLrpReport(): LrpPassReport | undefined;
  stop(): Promise<void>;
}

function limitsFrom(opts: ConvergerOptions): ConvergeLimits {
  return {
    kickNanos: nanosFromMs(opts.kickIntervalMs ?? D.kickInterval),
    pendingTimeoutNanos: nanosFromMs(opts.pendingTimeoutMs ?? D.pendingTimeout),
    claimTimeoutNanos: nanosFromMs(opts.claimTimeoutMs ?? D.claimTimeout),
    completedTtlNanos: nanosFromMs(opts.completedTtlMs ?? D.completedTtl),
    retryIntervalNanos: nanosFromMs(opts.retryIntervalMs ?? D.callbackRetryInterval),
  };
}

function lrpSettingsFrom(opts: ConvergerOptions): LrpConvergeSettings {
  return {
    crashPolicy: opts.crashPolicy ?? crashPolicyFrom(D),
    staleUnclaimedMs: opts.staleUnclaimedMs ?? D.staleUnclaimedTimeout,
    evacuationTimeoutMs: opts.evacuationTimeoutMs ?? D.evacuationTimeout,
  };
}

export async function startConverger(opts: ConvergerOptions): Promise<Converger> {
  const logger = opts.logger ?? pino({ level: "silent" });
  const limits = limitsFrom(opts);
  const intervalMs = opts.convergeIntervalMs ?? D.convergeInterval;
  const lockTtlMs = opts.lockTtlMs ?? D.lockTtl;
  const cellTtlMs = opts.cellTtlMs ?? D.cellTtl;
  if (intervalMs <= 0 || lockTtlMs <= 0 || cellTtlMs <= 0) throw new ConvergerOptionsError("intervals must be positive");
  const confirmAfterMs = opts.confirmHeldAfterMs ?? 2 * cellTtlMs;

  if (!opts.nc && !opts.natsUrl) throw new ConvergerOptionsError("startConverger needs natsUrl or nc");
  const nc = opts.nc ?? (await connectNats({ url: opts.natsUrl!, name: "diego-converger", logger, auth: opts.natsAuth, waitMs: opts.natsWaitMs }));
  const ownsConnection = !opts.nc;
  const buckets = { replicas: opts.replicas, logger };
  const kv = await openTasksBucket(nc, buckets);
  const store = createTaskStore(nc);
  const index = await createTaskIndex(kv, store, { nc, logger });
  const registry = await createCellRegistry(await openCellsBucket(nc, cellTtlMs, buckets), cellTtlMs, { nc, logger });
  await Promise.all([index.ready(), registry.ready()]);
  const lrpSettings = lrpSettingsFrom(opts);
  const lrpStore = createLrpStore(nc, await openLrpBuckets(nc, buckets), { crashPolicy: lrpSettings.crashPolicy });

  // After a start, a reconnect or a stalled watch the view of heartbeats is stale until cells
  // beat again: no cell is declared dead (and its tasks failed) before both views have been
  // current for a full cell TTL, and even then the bucket itself is asked first.
  const cells: LiveCells = {
    isLive: (cellId, sessionId) => registry.liveInView(cellId, sessionId),
    trusted: () => registry.trusted(),
    confirmGone: (cellId, sessionId) => registry.confirmGone(cellId, sessionId),
  };
  const lrpCells: LrpCells = {
    live: () => new Set(registry.listInView().map((p) => p.cellId)),
    trusted: () => registry.trusted(),
    confirmGone: (cellId) => registry.confirmGone(cellId),
  };
  const stopping = new AbortController();
  let lastLrpReport: LrpPassReport | undefined;

  let passCount = 0;
  let running: Promise<PassReport | undefined> | undefined;
  let again = false;
  let stopped = false;
  const due = createDueTimer(() => void requestPass());

  const runLrpPass = async (): Promise<void> => {
    const started = Date.now();
    try {
      const report = await lrpConvergePass({ store: lrpStore, nc, cells: lrpCells, settings: lrpSettings, logger });
      lastLrpReport = report;
      if (report.nextDueAt !== undefined) due.at(report.nextDueAt);
      const { nextDueAt: _due, ...counts } = report;
      const changed = Object.values(counts).some((n) => n > 0);
      logger[changed ? "info" : "debug"]({ report: counts, ms: Date.now() - started }, "LRP convergence pass");
    } catch (err) {
      logger.warn({ err }, "LRP convergence pass failed");
    }
  };

  /** Tasks and LRPs side by side; the pass is over when both are. */
  const runPass = async (): Promise<PassReport> => {
    const [tasks] = await Promise.allSettled([runTaskPass(), runLrpPass()]);
    if (tasks.status === "rejected") throw tasks.reason;
    return tasks.value;
  };

  const runTaskPass = async (): Promise<PassReport> => {
    const started = Date.now();
    const report = await convergePass({ store, index, cells, nc, limits, logger, signal: stopping.signal, retryMs: Math.max(intervalMs, 5_000) });
    const notHeld = await confirmHeldTasks({ store, index, cells, nc, logger, confirmAfterNanos: nanosFromMs(confirmAfterMs), signal: stopping.signal });
    if (notHeld > 0) report.fail += notHeld;
    passCount += 1;
    const changed = Object.values(report).some((n) => n > 0);
    logger[changed ? "info" : "debug"]({ report, tasks: index.size(), ms: Date.now() - started }, "convergence pass");
    return report;
  };

  /** One pass at a time; a request during a pass runs one more right after it. */
  const requestPass = (): Promise<PassReport | undefined> => {
    if (stopped || !lock.isLeader()) return Promise.resolve(undefined);
    if (running) {
      again = true;
      return running;
    }
    running = runPass()
      .catch((err: unknown) => {
        logger.warn({ err }, "convergence pass failed");
        return undefined;
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          void requestPass();
        }
      });
    return running;
  };

  const lock = createLeaderLock({
    bucket: await openLocksBucket(nc, lockTtlMs, buckets),
    name: "converger",
    holderId: opts.holderId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    refreshMs: Math.max(50, Math.floor(lockTtlMs / 3)),
    ttlMs: lockTtlMs,
    logger,
    onChange: (leader) => {
      if (leader) void requestPass();
    },
  });
  const interval = setInterval(() => void requestPass(), intervalMs);
  const crashes = watchCrashes(nc, () => lrpSettings.crashPolicy, (at) => due.at(at));
  const cellWatch = watchForLostCells(registry, opts.cellCheckMs ?? Math.min(1000, Math.max(50, cellTtlMs / 4)), (lost) => {
    logger.info({ cells: lost }, "cells disappeared; converging now");
    void requestPass();
  });

  // Decisions about cells wait while the view is not trusted; once it is, make them at once.
  let wasTrusted = cells.trusted();
  const trustWatch = setInterval(() => {
    const now = cells.trusted();
    if (now && !wasTrusted) void requestPass();
    wasTrusted = now;
  }, opts.cellCheckMs ?? Math.min(1000, Math.max(50, cellTtlMs / 4)));
  trustWatch.unref();

  logger.info({ tasks: index.size(), intervalMs }, "converger started");

  return {
    isLeader: () => lock.isLeader(),
    passes: () => passCount,
    convergeNow: requestPass,
    lastLrpReport: () => lastLrpReport,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping.abort();
      clearInterval(interval);
      clearInterval(trustWatch);
      due.stop();
      crashes.stop();
      cellWatch.stop();
      await running;
      await lock.stop();
      registry.stop();
      lrpStore.close();
      await index.stop();
      if (ownsConnection) await nc.drain().catch(() => undefined);
    },
  };
}
