import { randomUUID } from "node:crypto";
import os from "node:os";
import type { NatsConnection, Status } from "@nats-io/transport-node";
import pino, { type Logger } from "pino";
import { settingDefault } from "../cli/setting-default.js";
import { connectNats } from "../nats/connect.js";
import type { NatsAuth } from "../nats/connect-options.js";
import { openCellsBucket, openLocksBucket, openTasksBucket } from "../nats/buckets.js";
import { createLeaderLock } from "../nats/leader-lock.js";
import { createCellRegistry, createTaskIndex, createTaskStore, nanosFromMs } from "../store/index.js";
import { watchForLostCells } from "./cell-watch.js";
import { convergePass, type PassReport } from "./converge-pass.js";
import type { ConvergeLimits, LiveCells } from "./decide.js";
import { ConvergerOptionsError } from "./errors.js";

// The converger: timeouts, reaping, lost cells, re-auction. One instance acts at a time (leader
// lock "converger"); the others stand by with the same watch-fed view, ready to take over.

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
  /** How often the cell view is checked for cells that went away (a pass follows at once). */
  cellCheckMs?: number;
}

export interface Converger {
  isLeader(): boolean;
  /** Passes this instance has run. */
  passes(): number;
  /** Runs a pass now if this instance is the leader (tests, operators). */
  convergeNow(): Promise<PassReport | undefined>;
  stop(): Promise<void>;
}

function limitsFrom(opts: ConvergerOptions): ConvergeLimits {
  const ms = (given: number | undefined, key: string): bigint => nanosFromMs(given ?? settingDefault(key));
  return {
    kickNanos: ms(opts.kickIntervalMs, "kickInterval"),
    pendingTimeoutNanos: ms(opts.pendingTimeoutMs, "pendingTimeout"),
    claimTimeoutNanos: ms(opts.claimTimeoutMs, "claimTimeout"),
    completedTtlNanos: ms(opts.completedTtlMs, "completedTtl"),
    retryIntervalNanos: ms(opts.retryIntervalMs, "callbackRetryInterval"),
  };
}

export async function startConverger(opts: ConvergerOptions): Promise<Converger> {
  const logger = opts.logger ?? pino({ level: "silent" });
  const limits = limitsFrom(opts);
  const intervalMs = opts.convergeIntervalMs ?? settingDefault("convergeInterval");
  const lockTtlMs = opts.lockTtlMs ?? settingDefault("lockTtl");
  const cellTtlMs = opts.cellTtlMs ?? settingDefault("cellTtl");
  if (intervalMs <= 0 || lockTtlMs <= 0 || cellTtlMs <= 0) throw new ConvergerOptionsError("intervals must be positive");

  if (!opts.nc && !opts.natsUrl) throw new ConvergerOptionsError("startConverger needs natsUrl or nc");
  const nc = opts.nc ?? (await connectNats({ url: opts.natsUrl!, name: "diego-converger", logger, auth: opts.natsAuth }));
  const ownsConnection = !opts.nc;
  const kv = await openTasksBucket(nc);
  const store = createTaskStore(nc);
  const index = await createTaskIndex(kv, store);
  const registry = await createCellRegistry(await openCellsBucket(nc, cellTtlMs), cellTtlMs);
  await Promise.all([index.ready(), registry.ready()]);

  // After a reconnect the view of heartbeats is stale until cells beat again: do not declare
  // cells dead (and fail their tasks) before a full cell TTL has passed.
  let cellsTrustedAt = 0;
  const statusWatch = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  void (async () => {
    for await (const s of statusWatch) if (s.type === "reconnect") cellsTrustedAt = Date.now() + cellTtlMs;
  })();
  const cells: LiveCells = {
    isLive: (cellId, sessionId) => registry.get(cellId)?.sessionId === sessionId,
    trusted: () => Date.now() >= cellsTrustedAt,
  };

  let passCount = 0;
  let running: Promise<PassReport | undefined> | undefined;
  let again = false;
  let stopped = false;

  const runPass = async (): Promise<PassReport> => {
    const started = Date.now();
    const report = await convergePass({ store, index, cells, nc, limits, logger });
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
    bucket: await openLocksBucket(nc, lockTtlMs),
    name: "converger",
    holderId: opts.holderId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    refreshMs: Math.max(50, Math.floor(lockTtlMs / 3)),
    logger,
    onChange: (leader) => {
      if (leader) void requestPass();
    },
  });
  const interval = setInterval(() => void requestPass(), intervalMs);
  const cellWatch = watchForLostCells(registry, opts.cellCheckMs ?? Math.min(1000, Math.max(50, cellTtlMs / 4)), (lost) => {
    logger.info({ cells: lost }, "cells disappeared; converging now");
    void requestPass();
  });

  logger.info({ tasks: index.size(), intervalMs }, "converger started");

  return {
    isLeader: () => lock.isLeader(),
    passes: () => passCount,
    convergeNow: requestPass,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(interval);
      cellWatch.stop();
      await running;
      await lock.stop();
      statusWatch.stop?.();
      registry.stop();
      await index.stop();
      if (ownsConnection) await nc.drain().catch(() => undefined);
    },
  };
}
