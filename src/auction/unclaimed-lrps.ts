import { fromBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ActualLRPSchema, ActualLrpState, DesiredLRPResponseSchema, type ActualLRP, type DesiredLRPResponse } from "../gen/diego/v1/lrp_pb.js";
import { decoderFor, type LrpPlacementRequest } from "../model/index.js";
import type { LrpBuckets } from "../nats/index.js";
import { createRecordIndex, RecordEntry, type LrpStore, type RecordIndex, type RecordKind } from "../store/index.js";

// The UNCLAIMED ActualLRPs the auction places, kept by a watch on the actual-LRP bucket (and what
// placing needs from each DesiredLRP, by a watch on that bucket), so a scan costs what is
// waiting rather than a listing of every instance. The store stays the queue: while the view is
// not current (a start, NATS away, a watch being recreated) a scan lists the store as before,
// and the caller asks for such a full scan now and then anyway (a watch lost silently).

/** An instance record as the intake reads it. */
export class IndexedActual extends RecordEntry<ActualLRP> {
  readonly processGuid: string;
  readonly index: number;
  /** UNCLAIMED and not an evacuating copy: waiting for a cell. */
  readonly unclaimed: boolean;
  /** Changes with every write of the record (modification_tag). */
  readonly tag: string;

  constructor(key: string, revision: number, bytes: Uint8Array, a: ActualLRP, intern: (s: string) => string) {
    super(key, revision, bytes, a, decodeActual);
    this.processGuid = intern(a.processGuid);
    this.index = a.index;
    this.unclaimed = a.state === ActualLrpState.UNCLAIMED && !a.evacuating;
    this.tag = tagOf(a);
  }
}

/** What placing an instance needs from its DesiredLRP, read once per revision. */
export class IndexedDesired extends RecordEntry<DesiredLRPResponse> {
  readonly instances: number;
  readonly rootFs: string;
  readonly memoryMb: number;
  readonly diskMb: number;

  constructor(key: string, revision: number, bytes: Uint8Array, d: DesiredLRPResponse, intern: (s: string) => string) {
    super(key, revision, bytes, d, decodeDesired);
    this.instances = d.instances;
    this.rootFs = intern(d.rootfs);
    this.memoryMb = Math.max(0, d.memoryMb);
    this.diskMb = Math.max(0, d.diskMb);
  }
}

const decodeActual = decoderFor<ActualLRP>(ActualLRPSchema);
// DesiredLRPs hold a map (routes), which the compiled codecs refuse: protobuf-es decodes them.
const decodeDesired = (b: Uint8Array): DesiredLRPResponse => fromBinary(DesiredLRPResponseSchema, b);

const tagOf = (a: ActualLRP): string => `${a.modificationTag?.epoch ?? ""}:${a.modificationTag?.index ?? 0}`;
const keyOf = (processGuid: string, index: number): string => `${processGuid}.${index}`;

const UNCLAIMED = "u";

const actualKind: RecordKind<ActualLRP, IndexedActual, "waiting"> = {
  name: "actual LRPs (auction)",
  decode: decodeActual,
  entry: (key, revision, bytes, record, intern) => new IndexedActual(key, revision, bytes, record, intern),
  secondary: { waiting: (e) => (e.unclaimed ? UNCLAIMED : "") },
};

const desiredKind: RecordKind<DesiredLRPResponse, IndexedDesired, never> = {
  name: "desired LRPs (auction)",
  decode: decodeDesired,
  entry: (key, revision, bytes, record, intern) => new IndexedDesired(key, revision, bytes, record, intern),
  secondary: {},
};

export interface UnclaimedLrps {
  /** Resolves once both watches have replayed the stored records. */
  ready(): Promise<void>;
  /**
   * The instances to place: every UNCLAIMED one whose DesiredLRP still wants its index, except
   * those just sent to a cell and not changed since. `full` (or a view that is not current)
   * lists the store instead of reading the index.
   */
  scan(opts?: { full?: boolean }): Promise<LrpPlacementRequest[]>;
  /** Instances sent to cells: left out of scans while their record stays as it was, for holdMs. */
  sent(lrps: Array<{ processGuid: string; index: number }>): void;
  /** Instances a cell handed back: offered again by the next scan. */
  returned(lrps: Array<{ processGuid: string; index: number }>): void;
  /** Whether both watches are current (scans read the index). */
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
}

const DEFAULT_HOLD_MS = 5_000;

export async function createUnclaimedLrps(buckets: LrpBuckets, store: LrpStore, opts: UnclaimedLrpsOptions = {}): Promise<UnclaimedLrps> {
  const holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
  const common = { nc: opts.nc, logger: opts.logger };
  const [actuals, desired]: [RecordIndex<IndexedActual, "waiting">, RecordIndex<IndexedDesired, never>] = await Promise.all([
    createRecordIndex(buckets.actual, actualKind, common),
    createRecordIndex(buckets.desired, desiredKind, common),
  ]);
  /** key -> the tag it had when sent, and until when it is held back. */
  const held = new Map<string, { tag: string; until: number }>();

  const unsubscribe = actuals.subscribe((key, before, after) => {
    if (after?.tag !== held.get(key)?.tag) held.delete(key);
    if (after?.unclaimed && !before?.unclaimed) opts.onUnclaimed?.();
  });

  const isHeld = (key: string, tag: string, now: number): boolean => {
    const h = held.get(key);
    if (!h) return false;
    if (h.tag === tag && now < h.until) return true;
    held.delete(key);
    return false;
  };

  /** The DesiredLRP's placement needs, from the index; the store when the index lacks it or may lag (a scale up). */
  const desiredFor = (scanCache: Map<string, Promise<IndexedDesiredLike | undefined>>, guid: string, index: number): Promise<IndexedDesiredLike | undefined> | IndexedDesiredLike => {
    const d = desired.get(guid);
    if (d && index < d.instances) return d;
    let p = scanCache.get(guid);
    if (!p) {
      p = store.getDesired(guid).then((s) => (s ? desiredLike(s.value) : undefined));
      scanCache.set(guid, p);
    }
    return p;
  };

  const fromIndex = async (): Promise<LrpPlacementRequest[]> => {
    const now = Date.now();
    const cache = new Map<string, Promise<IndexedDesiredLike | undefined>>();
    const out: LrpPlacementRequest[] = [];
    const slow: Array<Promise<void>> = [];
    for (const a of actuals.listBy("waiting", UNCLAIMED)) {
      if (isHeld(a.key, a.tag, now)) continue;
      const d = desiredFor(cache, a.processGuid, a.index);
      if (d instanceof Promise) slow.push(d.then((x) => void addRequest(out, a, x)));
      else addRequest(out, a, d);
    }
    await Promise.all(slow);
    return out;
  };

  const fromStore = async (): Promise<LrpPlacementRequest[]> => {
    const now = Date.now();
    const cache = new Map<string, Promise<IndexedDesiredLike | undefined>>();
    const listed = await store.listActuals();
    const out: LrpPlacementRequest[] = [];
    await Promise.all(
      listed.map(async (a) => {
        if (a.state !== ActualLrpState.UNCLAIMED || a.evacuating || isHeld(keyOf(a.processGuid, a.index), tagOf(a), now)) return;
        addRequest(out, a, await desiredFor(cache, a.processGuid, a.index));
      }),
    );
    return out;
  };

  const current = (): boolean => actuals.currentSince() !== undefined && desired.currentSince() !== undefined;

  const mark = (lrps: Array<{ processGuid: string; index: number }>, hold: boolean): void => {
    const until = Date.now() + holdMs;
    for (const l of lrps) {
      const key = keyOf(l.processGuid, l.index);
      const a = actuals.get(key);
      if (hold && a) held.set(key, { tag: a.tag, until });
      else held.delete(key);
    }
  };

  return {
    ready: async () => {
      await Promise.all([actuals.ready(), desired.ready()]);
    },
    scan: (o = {}) => (o.full || !current() ? fromStore() : fromIndex()),
    sent: (lrps) => mark(lrps, true),
    returned: (lrps) => mark(lrps, false),
    current,
    waiting: () => actuals.listBy("waiting", UNCLAIMED).length,
    async stop() {
      unsubscribe();
      held.clear();
      await Promise.all([actuals.stop(), desired.stop()]);
    },
  };
}

type IndexedDesiredLike = Pick<IndexedDesired, "instances" | "rootFs" | "memoryMb" | "diskMb">;

const desiredLike = (d: DesiredLRPResponse): IndexedDesiredLike => ({
  instances: d.instances,
  rootFs: d.rootfs,
  memoryMb: Math.max(0, d.memoryMb),
  diskMb: Math.max(0, d.diskMb),
});

/** Adds the instance unless its DesiredLRP is gone or no longer wants its index (an extra the converger retires). */
function addRequest(out: LrpPlacementRequest[], a: { processGuid: string; index: number }, d: IndexedDesiredLike | undefined): void {
  if (!d || a.index >= d.instances) return;
  out.push({ processGuid: a.processGuid, index: a.index, rootFs: d.rootFs, memoryMb: d.memoryMb, diskMb: d.diskMb });
}
