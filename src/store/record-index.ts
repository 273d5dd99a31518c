import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { startResilientWatch } from "./kv-watch.js";

// An in-memory view of every record of one kind in a KV bucket (tasks today; desired and actual
// LRPs next), fed by a watch on the bucket and by this process's own writes, so a list right
// after a create includes it. Listing 100,000 records then costs no round trip.
//
// Each entry keeps the stored bytes, not the decoded record: 100,000 decoded records held about
// 400 MB of small objects, and every full garbage collection walked them all (a list of
// 100,000 tasks took a second, mostly in GC). The record is decoded when asked for and kept
// only while something still holds it.
//
// The index knows no protocol. What a layer above wants cached per record (the REST JSON, the
// protobuf a gRPC list sends) it defines as a view; each entry makes a view on first use and
// keeps it until the record changes.

/** A cached rendering of an entry, defined by whoever reads the index. */
export interface RecordView<E, V> {
  /** Names the view in messages. */
  readonly name: string;
  /** Where entries keep it: views are few, each gets its own slot. */
  readonly slot: number;
  make(entry: E): V;
}

let nextSlot = 0;

export function defineView<E, V>(name: string, make: (entry: E) => V): RecordView<E, V> {
  return { name, slot: nextSlot++, make };
}

/** One stored record of an index; kinds extend it with what they read without decoding. */
export class RecordEntry<R extends object> {
  private decoded: WeakRef<R>;
  private views?: unknown[];

  constructor(
    /** The record's key in the bucket (a task's guid). */
    readonly key: string,
    readonly revision: number,
    /** The record as stored. */
    readonly bytes: Uint8Array,
    record: R,
    private readonly decode: (bytes: Uint8Array) => R,
  ) {
    this.decoded = new WeakRef(record);
  }

  /** The record, decoded on demand (the same object while it is still in use). */
  get record(): R {
    let r = this.decoded.deref();
    if (!r) {
      r = this.decode(this.bytes);
      this.decoded = new WeakRef(r);
    }
    return r;
  }

  /**
   * The record without keeping it, for a view made once. (A list makes views of every record in
   * one go, and a WeakRef keeps its target alive until the current job ends: all of them at
   * once. A local dies young.)
   */
  transientRecord(): R {
    return this.decoded.deref() ?? this.decode(this.bytes);
  }

  /** The view of this record, made on first use and cached. */
  view<V>(v: RecordView<this, V>): V {
    const views = (this.views ??= []);
    let out = views[v.slot] as V | undefined;
    if (out === undefined) views[v.slot] = out = v.make(this);
    return out;
  }

  /** Whether the view is cached already. */
  hasView(v: RecordView<this, unknown>): boolean {
    return this.views?.[v.slot] !== undefined;
  }
}

/** What an index needs to know about a kind of record. */
export interface RecordKind<R extends object, E extends RecordEntry<R>, S extends string> {
  /** Names the watch in log lines ("tasks"). */
  readonly name: string;
  decode(bytes: Uint8Array): R;
  /** The entry of a stored record. `intern` returns one shared copy of a string (a domain, say). */
  entry(key: string, revision: number, bytes: Uint8Array, record: R, intern: (s: string) => string): E;
  /** The secondary indexes: for each, the value an entry is listed under ("" for none). */
  readonly secondary: { readonly [name in S]: (entry: E) => string };
}

export type IndexListener<E> = (key: string, before: E | undefined, after: E | undefined) => void;

/** `record` is `bytes` decoded; both are undefined for a removal. */
export type RecordWriteListener<R> = (key: string, revision: number, record?: R, bytes?: Uint8Array) => void;

/** A store that tells about its own writes (so a process reads them at once). */
export interface RecordWrites<R> {
  onWrite(listener: RecordWriteListener<R>): void;
}

export interface RecordIndex<E, S extends string> {
  /** Resolves once the watch has replayed every stored record. */
  ready(): Promise<void>;
  get(key: string): E | undefined;
  list(): E[];
  /** The entries a secondary index lists under `value` (a domain, a cell). */
  listBy(index: S, value: string): E[];
  size(): number;
  /** Observes every change, after the initial replay. */
  subscribe(listener: IndexListener<E>): () => void;
  /** Since when the view has been current without a break (see kv-watch.ts). */
  currentSince(): number | undefined;
  stop(): Promise<void>;
}

export interface RecordIndexOptions<R, E> {
  /** The store this process writes through: its writes show at once. */
  writes?: RecordWrites<R>;
  /** The connection the bucket is on: a disconnect makes the view not current at once. */
  nc?: NatsConnection;
  logger?: Logger;
  /**
   * Views to make ahead of the first read, in small slices whenever writes pause (the receptor's
   * REST JSON): otherwise the first list after a start makes them all, ~3 s at 100,000.
   */
  warm?: readonly RecordView<E, unknown>[];
}

/** How long writes must pause before warming runs, and how many records it does per turn. */
const WARM_AFTER_MS = 500;
const WARM_SLICE = 500;
/** Tombstones only matter while writes race the watch; the map is cleared past this size. */
const MAX_TOMBSTONES = 10_000;

export async function createRecordIndex<R extends object, E extends RecordEntry<R>, S extends string>(
  kv: KV,
  kind: RecordKind<R, E, S>,
  opts: RecordIndexOptions<R, E> = {},
): Promise<RecordIndex<E, S>> {
  const entries = new Map<string, E>();
  const secondary = Object.entries(kind.secondary) as Array<[S, (e: E) => string]>;
  const byIndex = new Map<S, Map<string, Set<string>>>(secondary.map(([name]) => [name, new Map()]));
  const interned = new Map<string, string>();
  const intern = (s: string): string => interned.get(s) ?? (interned.set(s, s), s);
  const listeners = new Set<IndexListener<E>>();
  const tombstones = new Map<string, number>();
  let initialized = false;
  const warmer = opts.warm?.length ? createWarmer(entries, opts.warm) : undefined;
  let markReady!: () => void;
  const readyPromise = new Promise<void>((r) => (markReady = r));

  const safeDecode = (bytes: Uint8Array): R | undefined => {
    try {
      return kind.decode(bytes);
    } catch {
      // An undecodable record is treated as absent (the converger removes it).
      return undefined;
    }
  };

  const unlist = (e: E): void => {
    for (const [name, valueOf] of secondary) byIndex.get(name)!.get(valueOf(e))?.delete(e.key);
  };
  const enlist = (e: E): void => {
    for (const [name, valueOf] of secondary) {
      const values = byIndex.get(name)!;
      const value = valueOf(e);
      let keys = values.get(value);
      if (!keys) values.set(value, (keys = new Set()));
      keys.add(e.key);
    }
  };

  /** `record` is `bytes` decoded, when the caller has it; undefined bytes remove the record. */
  const apply = (key: string, revision: number, record?: R, bytes?: Uint8Array): void => {
    const before = entries.get(key);
    if (before && before.revision >= revision) return;
    const decoded = bytes && (record ?? safeDecode(bytes));
    if (!bytes || !decoded) {
      if (before) unlist(before);
      entries.delete(key);
      // A tombstone revision must still win over late, older updates.
      tombstones.set(key, revision);
    } else {
      const dead = tombstones.get(key);
      if (dead !== undefined && dead >= revision) return;
      tombstones.delete(key);
      if (before) unlist(before);
      const entry = kind.entry(key, revision, bytes, decoded, intern);
      entries.set(key, entry);
      enlist(entry);
      warmer?.add(key);
    }
    if (initialized) {
      const after = entries.get(key);
      for (const l of listeners) l(key, before, after);
    }
  };
  opts.writes?.onWrite(apply);

  const markInitialized = (caughtUp: boolean): void => {
    if (initialized || !caughtUp) return;
    initialized = true;
    markReady();
  };

  const status = await kv.status();
  if (status.values === 0) {
    initialized = true;
    markReady();
  }
  const watch = startResilientWatch({
    kv,
    nc: opts.nc,
    logger: opts.logger,
    name: kind.name,
    onEntry(e) {
      // This process's own writes come back through the watch: nothing to do for those.
      const known = entries.get(e.key);
      if (known && known.revision >= e.revision) {
        markInitialized(e.isUpdate);
        return;
      }
      // A copy: the entry's value is a view into a whole socket read, which it would keep alive.
      const bytes = e.operation === "PUT" && e.length > 0 ? e.value.slice() : undefined;
      apply(e.key, e.revision, undefined, bytes);
      markInitialized(e.isUpdate);
      if (tombstones.size > MAX_TOMBSTONES) tombstones.clear();
    },
  });

  return {
    ready: () => readyPromise,
    get: (key) => entries.get(key),
    list: () => [...entries.values()],
    listBy(index, value) {
      const keys = byIndex.get(index)?.get(value);
      if (!keys) return [];
      const out: E[] = [];
      for (const k of keys) {
        const e = entries.get(k);
        if (e) out.push(e);
      }
      return out;
    },
    size: () => entries.size,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    currentSince: () => watch.currentSince(),
    async stop() {
      warmer?.stop();
      watch.stop();
    },
  };
}

/** Makes the views of records added to it, a slice per event-loop turn, once writes pause. */
function createWarmer<E extends RecordEntry<object>>(entries: Map<string, E>, views: readonly RecordView<E, unknown>[]): { add(key: string): void; stop(): void } {
  const cold = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let busyUntil = 0;
  const slice = (): void => {
    timer = undefined;
    if (Date.now() < busyUntil) return void (timer = setTimeout(slice, WARM_AFTER_MS).unref());
    let n = 0;
    for (const key of cold) {
      cold.delete(key);
      const e = entries.get(key);
      if (e) for (const v of views) e.view(v);
      if (++n === WARM_SLICE) break;
    }
    if (cold.size > 0) timer = setTimeout(slice, 0).unref();
  };
  return {
    add(key) {
      cold.add(key);
      busyUntil = Date.now() + WARM_AFTER_MS;
      timer ??= setTimeout(slice, WARM_AFTER_MS).unref();
    },
    stop() {
      clearTimeout(timer);
      cold.clear();
    },
  };
}
