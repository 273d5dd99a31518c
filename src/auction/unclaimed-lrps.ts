import { fromBinary } from "@bufbuild/protobuf";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ActualLrpState, DesiredLRPResponseSchema } from "../gen/diego/v1/lrp_pb.js";
import { FastReader, type LrpPlacementRequest } from "../model/index.js";
import type { LrpBuckets } from "../nats/index.js";
import { startResilientWatch, type LrpStore, type ResilientWatch } from "../store/index.js";

// The UNCLAIMED ActualLRPs the auction places, kept by a watch on the actual-LRP bucket (and what
// placing needs from each DesiredLRP, by a watch on that bucket), so a scan costs what is
// waiting rather than a listing of every instance. The store stays the queue: a full scan lists
// it as before, which the auctioneer asks for now and then and while the view is not current
// (NATS away, a watch stalled and being recreated). A watch that lags under load is still read:
// what it has not delivered yet arrives later and calls onUnclaimed; listing 10,000 records
// whenever it lags would only add to the load.
//
// Not record-index.ts: that one keeps each record's bytes, a WeakRef to it and secondary sets
// for lists and views, and with 1,000 cells placing 10,000 instances its upkeep was the
// auctioneer's largest cost. This keeps per key its revision and whether it waits, reading only
// the state field; the process guid and index are in the key (`<guid>.<index>[.evacuating]`).

export interface UnclaimedLrps {
  /** Resolves once both watches have replayed the stored records. */
  ready(): Promise<void>;
  /**
   * The instances to place: every UNCLAIMED one whose DesiredLRP still wants its index, except
   * those just sent to a cell and not changed since. `full` lists the store instead of reading
   * the index.
   */
  scan(opts?: { full?: boolean }): Promise<LrpPlacementRequest[]>;
  /** Instances sent to cells: left out of scans while their record stays as it was, for holdMs. */
  sent(lrps: Array<{ processGuid: string; index: number }>): void;
  /** Instances a cell handed back: offered again by the next scan. */
  returned(lrps: Array<{ processGuid: string; index: number }>): void;
  /** Whether both watches are current (caught up with their streams, connected). */
  current(): boolean;
  /** UNCLAIMED instances in the index. */
  waiting(): number;
  stop(): Promise<void>;
}

export interface UnclaimedLrpsOptions {
  nc?: NatsConnection;
  logger?: Logger;
  /** Called when an instance becomes UNCLAIMED (created, crashed, handed back), not for a placement error written over one. */
  onUnclaimed?: () => void;
  /**
   * How long a sent instance is left out of scans unless its record changes: the cell writes
   * its claim before it answers, so this only covers the watch's lag behind that write.
   */
  holdMs?: number;
  /** How often the watches are checked against their streams (kv-watch.ts; default 1 s). */
  checkMs?: number;
}

/** What placing an instance needs from its DesiredLRP. */
interface Needs {
  instances: number;
  rootFs: string;
  memoryMb: number;
  diskMb: number;
}

interface Waiting {
  processGuid: string;
  index: number;
  revision: number;
}

const DEFAULT_HOLD_MS = 5_000;
const STATE_FIELD = 8;

/** The state field alone (a whole decode per watch entry was most of the upkeep). */
export function actualState(bytes: Uint8Array): ActualLrpState {
  const r = new FastReader(bytes);
  let state = ActualLrpState.UNCLAIMED as number;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === STATE_FIELD && (tag & 7) === 0) state = r.int32();
    else r.skip(tag & 7, tag >>> 3);
  }
  return state as ActualLrpState;
}

/** `<guid>.<index>` of an instance record; undefined for an evacuating copy or a foreign key. */
function instanceOf(key: string): { processGuid: string; index: number } | undefined {
  const dot = key.indexOf(".");
  if (dot <= 0 || key.indexOf(".", dot + 1) !== -1) return undefined;
  const index = Number(key.slice(dot + 1));
  return Number.isInteger(index) && index >= 0 ? { processGuid: key.slice(0, dot), index } : undefined;
}

const needsOf = (bytes: Uint8Array): Needs => {
  const d = fromBinary(DesiredLRPResponseSchema, bytes);
  return { instances: d.instances, rootFs: d.rootfs, memoryMb: Math.max(0, d.memoryMb), diskMb: Math.max(0, d.diskMb) };
};

/** A bucket followed by a resilient watch: `apply` sees each entry newer than the last one of its key. */
async function follow(
  kv: KV,
  name: string,
  opts: UnclaimedLrpsOptions,
  apply: (e: KvWatchEntry, live: boolean) => void,
): Promise<{ watch: ResilientWatch; loaded: Promise<void> }> {
  const revisions = new Map<string, number>();
  let loaded = false;
  let markLoaded!: () => void;
  const loadedPromise = new Promise<void>((r) => (markLoaded = r));
  const setLoaded = (): void => {
    loaded = true;
    markLoaded();
  };
  if ((await kv.status()).values === 0) setLoaded();
  const watch = startResilientWatch({
    kv,
    nc: opts.nc,
    logger: opts.logger,
    name,
    checkMs: opts.checkMs,
    onEntry(e) {
      // A recreated watch may deliver an entry again.
      if ((revisions.get(e.key) ?? 0) >= e.revision) return;
      if (e.operation === "PUT") revisions.set(e.key, e.revision);
      else revisions.delete(e.key);
      apply(e, loaded);
      if (!loaded && (e.delta === 0 || e.isUpdate)) setLoaded();
    },
  });
  return { watch, loaded: loadedPromise };
}

export async function createUnclaimedLrps(buckets: LrpBuckets, store: LrpStore, opts: UnclaimedLrpsOptions = {}): Promise<UnclaimedLrps> {
  const holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
  /** key -> an UNCLAIMED instance record. */
  const waiting = new Map<string, Waiting>();
  const desired = new Map<string, Needs>();
  /** key -> the revision it had when sent, and until when it is held back. */
  const held = new Map<string, { revision: number; until: number }>();

  const actuals = await follow(buckets.actual, "actual LRPs (auction)", opts, (e, live) => {
    const instance = instanceOf(e.key);
    if (!instance) return;
    let isWaiting = false;
    if (e.operation === "PUT" && e.length > 0) {
      try {
        isWaiting = actualState(e.value) === ActualLrpState.UNCLAIMED;
      } catch {
        opts.logger?.warn({ key: e.key }, "undecodable ActualLRP record skipped");
      }
    }
    const was = waiting.has(e.key);
    if (isWaiting) waiting.set(e.key, { ...instance, revision: e.revision });
    else waiting.delete(e.key);
    if (held.get(e.key)?.revision !== e.revision) held.delete(e.key);
    if (live && isWaiting && !was) opts.onUnclaimed?.();
  });
  const desires = await follow(buckets.desired, "desired LRPs (auction)", opts, (e) => {
    try {
      if (e.operation === "PUT" && e.length > 0) desired.set(e.key, needsOf(e.value));
      else desired.delete(e.key);
    } catch {
      desired.delete(e.key);
    }
  });

  const isHeld = (key: string, revision: number | undefined, now: number): boolean => {
    const h = held.get(key);
    if (!h) return false;
    // A listing has no revisions: the hold's time alone counts.
    if ((revision === undefined || h.revision === revision) && now < h.until) return true;
    held.delete(key);
    return false;
  };

  /** The DesiredLRP's needs from the index; from the store when the index lacks it or may lag (a scale up). */
  const needsFor = (cache: Map<string, Promise<Needs | undefined>>, guid: string, index: number): Needs | Promise<Needs | undefined> => {
    const d = desired.get(guid);
    if (d && index < d.instances) return d;
    let p = cache.get(guid);
    if (!p) {
      p = store.getDesired(guid).then((s) => (s ? { instances: s.value.instances, rootFs: s.value.rootfs, memoryMb: Math.max(0, s.value.memoryMb), diskMb: Math.max(0, s.value.diskMb) } : undefined));
      cache.set(guid, p);
    }
    return p;
  };

  const collect = async (candidates: Iterable<{ key: string; processGuid: string; index: number; revision?: number }>): Promise<LrpPlacementRequest[]> => {
    const now = Date.now();
    const cache = new Map<string, Promise<Needs | undefined>>();
    const out: LrpPlacementRequest[] = [];
    const slow: Array<Promise<void>> = [];
    for (const a of candidates) {
      if (isHeld(a.key, a.revision, now)) continue;
      const d = needsFor(cache, a.processGuid, a.index);
      if (d instanceof Promise) slow.push(d.then((x) => addRequest(out, a, x)));
      else addRequest(out, a, d);
    }
    await Promise.all(slow);
    return out;
  };

  const fromIndex = (): Promise<LrpPlacementRequest[]> => collect([...waiting].map(([key, w]) => ({ key, ...w })));

  const fromStore = async (): Promise<LrpPlacementRequest[]> => {
    const listed = await store.listActuals();
    return collect(
      listed
        .filter((a) => a.state === ActualLrpState.UNCLAIMED && !a.evacuating)
        .map((a) => ({ key: `${a.processGuid}.${a.index}`, processGuid: a.processGuid, index: a.index })),
    );
  };

  const mark = (lrps: Array<{ processGuid: string; index: number }>, hold: boolean): void => {
    const until = Date.now() + holdMs;
    for (const l of lrps) {
      const key = `${l.processGuid}.${l.index}`;
      const w = waiting.get(key);
      if (hold && w) held.set(key, { revision: w.revision, until });
      else held.delete(key);
    }
  };

  return {
    ready: async () => {
      await Promise.all([actuals.loaded, desires.loaded]);
    },
    scan: (o = {}) => (o.full ? fromStore() : fromIndex()),
    sent: (lrps) => mark(lrps, true),
    returned: (lrps) => mark(lrps, false),
    current: () => actuals.watch.currentSince() !== undefined && desires.watch.currentSince() !== undefined,
    waiting: () => waiting.size,
    async stop() {
      actuals.watch.stop();
      desires.watch.stop();
      held.clear();
    },
  };
}

/** Adds the instance unless its DesiredLRP is gone or no longer wants its index (an extra the converger retires). */
function addRequest(out: LrpPlacementRequest[], a: { processGuid: string; index: number }, d: Needs | undefined): void {
  if (!d || a.index >= d.instances) return;
  out.push({ processGuid: a.processGuid, index: a.index, rootFs: d.rootFs, memoryMb: d.memoryMb, diskMb: d.diskMb });
}
