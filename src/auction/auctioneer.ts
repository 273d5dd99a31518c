import { randomUUID } from "node:crypto";
import os from "node:os";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { LrpStartSchema, WorkRequestSchema, WorkResponseSchema, type LrpStart } from "../gen/diego/v1/internal_pb.js";
import { TaskState } from "../gen/diego/v1/task_pb.js";
import { openCellsBucket, openLocksBucket, openLrpBuckets, openTasksBucket, connectNats, type NatsAuth, createLeaderLock, subjects, onNatsStatus } from "../nats/index.js";
import { recordAuction } from "../metrics/index.js";
import { applyUntilDone, createCellRegistry, createLrpStore, createTaskIndex, createTaskStore, InvalidStateTransitionError, TaskNotFoundError, transitions, type TaskIndex, type TaskStore } from "../store/index.js";
import { gatherBids, silentBids } from "./gather-bids.js";
import type { LrpPlacementRequest, PlacementRequest } from "../model/index.js";
import { recordLrpFailures } from "./lrp-intake.js";
import { createUnclaimedLrps } from "./unclaimed-lrps.js";
import { INSUFFICIENT_RESOURCES, schedule } from "./schedule.js";

export interface AuctioneerOptions {
  natsUrl: string;
  /** Credentials and TLS for NATS. */
  natsAuth?: NatsAuth;
  logger: Logger;
  cellTtlMs: number;
  lockTtlMs: number;
  /** Auctions a task may go unplaced in before it fails with the placement reason. */
  maxPlacementAttempts: number;
  /** Wait before an unplaced task is auctioned again. */
  retryDelayMs: number;
  /** How long to wait for cells' bids. */
  bidTimeoutMs?: number;
  holderId?: string;
  /** Replicas of the buckets this process creates (a NATS cluster). */
  replicas?: number;
  /** How long to wait for NATS at start (0 or absent: for ever). */
  natsWaitMs?: number;
  /** Observes each auction (the benchmark counts placements). */
  onAuction?: (stats: AuctionStats) => void;
}

export interface AuctionStats {
  tasks: number;
  placed: number;
  failed: number;
  cells: number;
  /** LRP instances auctioned, placed (sent to a cell) and failed (placement_error written). */
  lrps?: number;
  lrpsPlaced?: number;
  lrpsFailed?: number;
  durationMs: number;
  /** Where the time went: reading the work, gathering bids, scheduling, work requests and writes. */
  phasesMs?: { intake: number; bids: number; schedule: number; work: number };
}

export interface Auctioneer {
  isLeader(): boolean;
  stop(): Promise<void>;
}

export async function startAuctioneer(opts: AuctioneerOptions): Promise<Auctioneer> {
  const logger = opts.logger;
  const nc: NatsConnection = await connectNats({ url: opts.natsUrl, name: "diego-auctioneer", logger, auth: opts.natsAuth, waitMs: opts.natsWaitMs });
  const buckets = { replicas: opts.replicas, logger };
  const kv = await openTasksBucket(nc, buckets);
  const store = createTaskStore(nc);
  const index = await createTaskIndex(kv, store, { nc, logger });
  const lrpBuckets = await openLrpBuckets(nc, buckets);
  const lrpStore = createLrpStore(nc, lrpBuckets);
  // Set below, once the lock exists: the watch may report an instance before that.
  let onUnclaimed = (): void => undefined;
  const unclaimed = await createUnclaimedLrps(lrpBuckets, lrpStore, { nc, logger, onUnclaimed: () => onUnclaimed() });
  const cells = await createCellRegistry(await openCellsBucket(nc, opts.cellTtlMs, buckets), opts.cellTtlMs, { nc, logger });
  const stopping = new AbortController();
  await Promise.all([index.ready(), cells.ready(), unclaimed.ready()]);

  const queue = new Set<string>();
  /** Tasks that fit a cell but found no room: auctioned again when a cell frees some. */
  const waitingForRoom = new Set<string>();
  const retryTimers = new Set<NodeJS.Timeout>();
  let running = false;
  let stopped = false;
  /** UNCLAIMED LRP instances are looked up on the next auction (the watch, a kick, a timer). */
  let lrpScan = true;
  /** The next LRP scan lists the store rather than the watch-fed index (a silently lost watch). */
  let fullLrpScan = true;
  let lastFullScan = 0;

  const enqueue = (guid: string): void => {
    if (stopped || !lock.isLeader()) return;
    queue.add(guid);
    void pump();
  };
  const enqueueAllPending = (): void => {
    for (const t of index.list()) if (t.state === TaskState.PENDING) queue.add(t.guid);
    lrpScan = true;
    fullLrpScan = true;
    void pump();
  };
  const scanLrps = (): void => {
    if (stopped || !lock.isLeader()) return;
    lrpScan = true;
    void pump();
  };

  const pump = async (): Promise<void> => {
    if (running || stopped || (queue.size === 0 && !lrpScan) || !lock.isLeader()) return;
    running = true;
    try {
      while ((queue.size > 0 || lrpScan) && !stopped && lock.isLeader()) {
        const batch = [...queue];
        queue.clear();
        const withLrps = lrpScan;
        const full = withLrps && fullLrpScan;
        lrpScan = false;
        if (full) {
          fullLrpScan = false;
          lastFullScan = Date.now();
        }
        // Bounded: an auction stuck on a request that never ends must not stop all auctions.
        await withDeadline(runAuction(batch, withLrps, full), AUCTION_DEADLINE_MS).catch((err: unknown) => {
          logger.error({ err }, "auction failed; retrying its tasks");
          retryLater(batch);
          if (withLrps) scanLrpsLater();
        });
      }
    } finally {
      running = false;
    }
  };

  const retryLater = (guids: string[]): void => {
    if (guids.length === 0) return;
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      for (const g of guids) enqueue(g);
    }, opts.retryDelayMs);
    retryTimers.add(timer);
  };

  const scanLrpsLater = (): void => {
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      scanLrps();
    }, opts.retryDelayMs);
    retryTimers.add(timer);
  };

  const runAuction = async (guids: string[], withLrps: boolean, full: boolean): Promise<void> => {
    const started = performance.now();
    const [requests, lrps] = await Promise.all([pendingRequests(store, index, guids), withLrps ? unclaimed.scan({ full }) : []]);
    if (requests.length === 0 && lrps.length === 0) return;
    const registered = cells.list();
    // Until the cell view has been current for a TTL (after a start or a NATS outage) it may
    // miss live cells: with none in view ask anyway and wait the whole bid time, and fail no
    // task for want of a cell; those are auctioned again.
    const trusted = cells.trusted();
    const expected = trusted || registered.length > 0 ? registered.length : UNKNOWN_CELL_COUNT;
    const intakeDone = performance.now();
    const bids = await gatherBids(nc, randomUUID(), expected, opts.bidTimeoutMs ?? 1000);
    const bidsDone = performance.now();
    const { placements, failures: found, waiting, lrpPlacements, lrpFailures } = schedule(requests, [...bids, ...silentBids(registered, bids)], lrps);
    const failures = trusted ? found : [];
    if (!trusted) retryLater(found.map((f) => f.taskGuid));
    for (const g of waiting) waitingForRoom.add(g);
    const scheduled = performance.now();
    const rejected: string[] = [];
    let lrpsRejected = 0;
    const winners = new Set([...placements.keys(), ...lrpPlacements.keys()]);
    await Promise.all(
      [...winners].map(async (cellId) => {
        const sent = lrpPlacements.get(cellId) ?? [];
        // Held back from the next scans until the cell's claim shows in the watch.
        unclaimed.sent(sent);
        const answer = await sendWork(nc, cellId, placements.get(cellId) ?? [], sent.map(lrpStart), logger);
        unclaimed.returned(answer.rejectedLrps);
        rejected.push(...answer.rejected);
        lrpsRejected += answer.rejectedLrps.length;
      }),
    );
    // Instances a cell handed back, or that fit nowhere now, are looked at again later.
    if (lrpsRejected > 0 || lrpFailures.length > 0) scanLrpsLater();
    // Cells that did not answer were bid as full: "insufficient resources" may only mean they
    // were slow, so it is not written then (the instance is auctioned again anyway).
    const silent = bids.length < registered.length;
    const lrpFailuresToRecord = trusted ? lrpFailures.filter((f) => !(silent && f.reason === INSUFFICIENT_RESOURCES)) : [];
    const lrpsFailed = await recordLrpFailures(lrpStore, lrpFailuresToRecord, logger);
    for (const g of rejected) waitingForRoom.add(g);
    const stillPending = await Promise.all(
      failures.map((f) => recordFailure(store, f.taskGuid, f.reason, opts.maxPlacementAttempts, stopping.signal, logger)),
    );
    retryLater(failures.filter((_, i) => stillPending[i]).map((f) => f.taskGuid));
    const stats: AuctionStats = {
      tasks: requests.length,
      placed: requests.length - failures.length - rejected.length - waiting.length,
      failed: failures.length,
      cells: bids.length,
      lrps: lrps.length,
      lrpsPlaced: lrps.length - lrpFailures.length - lrpsRejected,
      lrpsFailed,
      durationMs: performance.now() - started,
      phasesMs: { intake: intakeDone - started, bids: bidsDone - intakeDone, schedule: scheduled - bidsDone, work: performance.now() - scheduled },
    };
    logger.debug(stats, "auction done");
    recordAuction(stats);
    opts.onAuction?.(stats);
  };

  const lock = createLeaderLock({
    bucket: await openLocksBucket(nc, opts.lockTtlMs, buckets),
    name: "auctioneer",
    holderId: opts.holderId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    refreshMs: Math.max(100, Math.floor(opts.lockTtlMs / 3)),
    ttlMs: opts.lockTtlMs,
    logger,
    onChange: (leader) => {
      if (leader) enqueueAllPending();
    },
  });
  // An instance the watch shows waiting is auctioned once the watch goes quiet for a moment: a
  // desire of 200 writes 200 records, and the first should not leave with an auction of its own.
  let batchTimer: NodeJS.Timeout | undefined;
  let batchStarted = 0;
  let lastArrival = 0;
  const batchDue = (): void => {
    const now = Date.now();
    const quietAt = lastArrival + LRP_BATCH_QUIET_MS;
    if (now < quietAt && now - batchStarted < LRP_BATCH_MAX_MS) {
      batchTimer = setTimeout(batchDue, Math.min(quietAt, batchStarted + LRP_BATCH_MAX_MS) - now);
      return;
    }
    batchTimer = undefined;
    scanLrps();
  };
  // One timer per batch, not one per arrival: 10,000 arrivals re-arming it cost more than the batch.
  onUnclaimed = () => {
    lastArrival = Date.now();
    if (batchTimer) return;
    batchStarted = lastArrival;
    batchTimer = setTimeout(batchDue, LRP_BATCH_QUIET_MS);
  };

  const unsubscribe = index.subscribe((guid, before, after) => {
    if (after?.state !== TaskState.PENDING) return;
    // A failed placement also changes the record; its retry waits for the retry timer.
    const wasUnplaced = before?.state === TaskState.PENDING && before.record.placementAttempts !== after.record.placementAttempts;
    if (!wasUnplaced) enqueue(guid);
  });
  const requeueWaiting = (): void => {
    const waiting = [...waitingForRoom];
    waitingForRoom.clear();
    for (const g of waiting) enqueue(g);
  };
  // Backstop for a missed "room freed" kick.
  const roomCheck = setInterval(() => {
    requeueWaiting();
    // Backstop for a lost LRP kick: UNCLAIMED instances are looked for anyway, in the store
    // itself now and then, should the watch have lost something without noticing.
    const sinceFull = Date.now() - lastFullScan;
    if (sinceFull >= FULL_LRP_SCAN_MS || (!unclaimed.current() && sinceFull >= NOT_CURRENT_FULL_LRP_SCAN_MS)) fullLrpScan = true;
    scanLrps();
  }, Math.max(opts.retryDelayMs, 1000));
  const kicks = nc.subscribe(subjects.auctionKick, {
    callback: (_err, msg) => {
      const guid = msg.string();
      // Any kick but a known task's may be for an LRP instance (created, unclaimed, crashed):
      // look in the store; the task path does not pay for a listing per kick.
      if (!guid || !index.get(guid)) lrpScan = true;
      // An empty kick: a cell freed room.
      if (guid) enqueue(guid);
      else requeueWaiting();
    },
  });

  // Kicks published while NATS was away are lost, and auctions then failed: look at every
  // pending task again.
  const stopStatus = onNatsStatus(nc, (st) => {
    if (st.type === "reconnect" && lock.isLeader()) enqueueAllPending();
  });

  return {
    isLeader: () => lock.isLeader(),
    async stop() {
      stopped = true;
      stopping.abort();
      stopStatus();
      clearInterval(roomCheck);
      clearTimeout(batchTimer);
      for (const t of retryTimers) clearTimeout(t);
      kicks.unsubscribe();
      unsubscribe();
      await lock.stop();
      await index.stop();
      await unclaimed.stop();
      lrpStore.close();
      cells.stop();
      await nc.drain().catch(() => undefined);
    },
  };
}

async function pendingRequests(
  store: TaskStore,
  index: TaskIndex,
  guids: string[],
): Promise<PlacementRequest[]> {
  const out: PlacementRequest[] = [];
  await Promise.all(
    guids.map(async (guid) => {
      // The index may not have seen a brand-new task yet, or a task put back to PENDING while
      // its watch was down; the store always has.
      const indexed = index.get(guid);
      const record = indexed?.state === TaskState.PENDING ? indexed.record : (await store.get(guid))?.record;
      const t = record?.task;
      if (!t || t.state !== TaskState.PENDING) return;
      out.push({ taskGuid: guid, stack: t.stack, rootFs: t.rootFs, memoryMb: t.memoryMb, diskMb: t.diskMb });
    }),
  );
  return out;
}

const lrpStart = (l: LrpPlacementRequest): LrpStart => create(LrpStartSchema, { processGuid: l.processGuid, index: l.index });

async function sendWork(
  nc: NatsConnection,
  cellId: string,
  taskGuids: string[],
  lrpStarts: LrpStart[],
  logger: Logger,
): Promise<{ rejected: string[]; rejectedLrps: LrpStart[] }> {
  try {
    const reply = await nc.request(
      subjects.cellWork(cellId),
      toBinary(WorkRequestSchema, create(WorkRequestSchema, { taskGuids, lrpStarts })),
      // Short: a cell that died mid-request must not hold up the next auction for long.
      { timeout: 5_000 },
    );
    const answer = fromBinary(WorkResponseSchema, reply.data);
    return { rejected: answer.rejected, rejectedLrps: answer.rejectedLrps };
  } catch (err) {
    // The cell may or may not have claimed them: re-auctioning only touches still-PENDING tasks
    // and still-UNCLAIMED instances (a claim is a compare-and-swap).
    logger.warn({ err, cellId, tasks: taskGuids.length, lrps: lrpStarts.length }, "cell did not take its work");
    return { rejected: taskGuids, rejectedLrps: lrpStarts };
  }
}

/** Longest an auction may take (bids, work requests, writes) before its tasks are retried. */
const AUCTION_DEADLINE_MS = 60_000;

class AuctionTimeoutError extends Error {
  override readonly name = "AuctionTimeoutError";
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AuctionTimeoutError(`auction still running after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A watch-fed LRP auction waits until no instance has arrived for QUIET ms, at most MAX ms. */
const LRP_BATCH_QUIET_MS = 20;
const LRP_BATCH_MAX_MS = 100;

/**
 * How often the LRP backstop scan lists the store rather than reading the watch-fed index, and
 * how often while the index's watches are not current (stalled, NATS away; a reconnect lists at
 * once). Rarely: the watch resumes from its last revision, so a listing is only insurance, and
 * one of 10,000 records on a loaded machine held an auction up for 4 s.
 */
const FULL_LRP_SCAN_MS = 120_000;
const NOT_CURRENT_FULL_LRP_SCAN_MS = 30_000;

/** Bids are awaited until the timeout when the number of live cells is not known. */
const UNKNOWN_CELL_COUNT = 100_000;

/** Returns true when the task is still PENDING (it gets another auction). */
async function recordFailure(
  store: TaskStore,
  guid: string,
  reason: string,
  max: number,
  signal: AbortSignal,
  logger: Logger,
): Promise<boolean> {
  try {
    const { record } = await applyUntilDone(store, guid, transitions.placementFailed(reason, max), {
      signal,
      logger,
      maxMs: 30_000,
      what: `record placement failure of ${guid}`,
    });
    return record.task!.state === TaskState.PENDING;
  } catch (err) {
    if (err instanceof TaskNotFoundError || err instanceof InvalidStateTransitionError) return false;
    throw err;
  }
}
