import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ByteArena, NO_HANDLE, type ArenaHandle, type ArenaStats } from "./byte-arena.js";
import { startResilientWatch } from "./kv-watch.js";

// An in-memory view of every record of one kind in a KV bucket (tasks today; desired and actual
// LRPs next), fed by a watch on the bucket and by this process's own writes, so a list right
// after a create includes it. Listing 100,000 records then costs no round trip.
//
// Each entry keeps the stored bytes, not the decoded record: 100,000 decoded records held about
// 400 MB of small objects, and every full garbage collection walked them all (a list of
// 100,000 tasks took a second, mostly in GC). The bytes live in one arena per index
// (byte-arena.ts), not in an ArrayBuffer each. The record is decoded when asked for and kept
// until the current turn of the event loop ends.
//
// The index knows no protocol. What a layer above wants cached per record (the REST JSON) it
// defines as a view; each entry makes a view on first use and keeps it until the record
// changes. A view of bytes is kept in the arena too; a view that is cheap to make (the protobuf
// a gRPC list sends, a slice of the record) is not kept at all.

/** Where a view's value is kept: on the entry, in the index's arena (bytes), or nowhere. */
export type ViewCache = "entry" | "arena" | "none";

/** A cached rendering of an entry, defined by whoever reads the index. */
export interface RecordView<E, V> {
  /** Names the view in messages. */
  readonly name: string;
  /** Where entries keep it: views are few, each gets its own slot. */
  readonly slot: number;
  readonly cache: ViewCache;
  make(entry: E): V;
}

let nextSlot = 0;

export function defineView<E, V>(name: string, make: (entry: E) => V, opts: { cache?: "entry" | "none" } = {}): RecordView<E, V> {
  return { name, slot: nextSlot++, cache: opts.cache ?? "entry", make };
}

/**
 * A view whose value is bytes (a record's JSON), kept in the index's arena. An entry keeps one
 * such view at a time (the receptor has one, its REST JSON); another replaces it.
 */
export function defineBytesView<E>(name: string, make: (entry: E) => Uint8Array): RecordView<E, Buffer> {
  return { name, slot: nextSlot++, cache: "arena", make: make as (entry: E) => Buffer };
}

/** What the entries of one index share: their arena, how to decode, one copy of each string. */
export interface EntryContext<R> {
  readonly arena: ByteArena;
  decode(bytes: Uint8Array): R;
  /** One shared copy of a string (a domain, say). */
  intern(s: string): string;
}

/** Records decoded in this turn of the event loop, let go together at its end. */
const held: Array<RecordEntry<object>> = [];
const letGo = (): void => {
  for (const e of held) e.letGo();
  held.length = 0;
};

/** One stored record of an index; kinds extend it with what they read without decoding. */
export class RecordEntry<R extends object> {
  /** The record as stored, in the arena. */
  private at: ArenaHandle;
  /** The bytes view kept in the arena, and its slot. */
  private viewAt: ArenaHandle = NO_HANDLE;
  private viewSlot = -1;
  private views?: unknown[];
  private decoded?: R;
  /** Its bytes once the index has dropped it (someone may still hold it). */
  private orphan?: Buffer;

  constructor(
    /** The record's key in the bucket (a task's guid). */
    readonly key: string,
    readonly revision: number,
    /** The record as stored (copied). */
    bytes: Uint8Array,
    record: R | undefined,
    private readonly ctx: EntryContext<R>,
  ) {
    this.at = ctx.arena.put(bytes);
    if (record) this.hold(record);
  }

  /** The record as stored: a view into the arena, valid while held. */
  get bytes(): Buffer {
    return this.orphan ?? this.ctx.arena.get(this.at);
  }

  /** The record, decoded on demand (the same object until this turn of the event loop ends). */
  get record(): R {
    return this.decoded ?? this.hold(this.ctx.decode(this.bytes));
  }

  /**
   * The record without keeping it, for a view made once. (A list makes views of every record in
   * one go; held, all of them would live at once. A local dies young.)
   */
  transientRecord(): R {
    return this.decoded ?? this.ctx.decode(this.bytes);
  }

  /** The view of this record, made on first use and cached as the view says. */
  view<V>(v: RecordView<this, V>): V {
    switch (v.cache) {
      case "none":
        return v.make(this);
      case "arena":
        return (this.ensureBytesView(v as RecordView<this, Buffer>) ? this.ctx.arena.get(this.viewAt) : v.make(this)) as V;
      default: {
        const views = (this.views ??= []);
        let out = views[v.slot] as V | undefined;
        if (out === undefined) views[v.slot] = out = v.make(this);
        return out;
      }
    }
  }

  /** The length of a bytes view (made if it is not yet), without a Buffer for it. */
  viewLength(v: RecordView<this, Buffer>): number {
    return this.ensureBytesView(v) ? this.ctx.arena.length(this.viewAt) : this.view(v).length;
  }

  /**
   * Copies a bytes view into `target` at `at` (which must have room); returns its length. A
   * list of 100,000 copies each view into the reply this way, with no object per record.
   */
  copyView(v: RecordView<this, Buffer>, target: Uint8Array, at: number): number {
    if (this.ensureBytesView(v)) return this.ctx.arena.copyTo(this.viewAt, target, at);
    const bytes = this.view(v);
    target.set(bytes, at);
    return bytes.length;
  }

  /** Whether the view is cached already. */
  hasView(v: RecordView<this, unknown>): boolean {
    return v.cache === "arena" ? this.viewSlot === v.slot : this.views?.[v.slot] !== undefined;
  }

  /** Makes a bytes view into the arena if it is not there; false if it cannot be kept there. */
  private ensureBytesView(v: RecordView<this, Buffer>): boolean {
    // A dropped entry's bytes are no longer the arena's; its views are made at each use.
    if (v.cache !== "arena" || this.orphan) return false;
    if (this.viewSlot !== v.slot) {
      this.ctx.arena.free(this.viewAt);
      this.viewAt = this.ctx.arena.put(v.make(this));
      this.viewSlot = v.slot;
    }
    return true;
  }

  /** @internal The index drops the entry: its bytes become garbage. */
  release(): void {
    // A view into the slab keeps it alive for whoever still holds this entry.
    this.orphan = this.bytes;
    this.viewSlot = -1;
    this.ctx.arena.free(this.at);
    this.ctx.arena.free(this.viewAt);
    this.at = this.viewAt = NO_HANDLE;
  }

  /** @internal The arena compacts: the entry's bytes may move. */
  relocate(move: (h: ArenaHandle) => ArenaHandle): void {
    this.at = move(this.at);
    this.viewAt = move(this.viewAt);
  }

  /** @internal */
  letGo(): void {
    this.decoded = undefined;
  }

  private hold(record: R): R {
    if (held.length === 0) setImmediate(letGo);
    held.push(this);
    return (this.decoded = record);
  }
}

/** What an index needs to know about a kind of record. */
export interface RecordKind<R extends object, E extends RecordEntry<R>, S extends string> {
  /** Names the watch in log lines ("tasks"). */
  readonly name: string;
  decode(bytes: Uint8Array): R;
  /** The entry of a stored record (`bytes` decoded is `record`). */
  entry(key: string, revision: number, bytes: Uint8Array, record: R, ctx: EntryContext<R>): E;
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
  /** What the entries' bytes (records and kept views) take in the arena. */
  arenaStats(): ArenaStats;
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
  const ctx: EntryContext<R> = {
    arena: new ByteArena(),
    decode: kind.decode,
    intern: (s) => interned.get(s) ?? (interned.set(s, s), s),
  };
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

  // "" is "none" (a task on no cell): not listed, which saves a set entry for every such record.
  const unlist = (e: E): void => {
    for (const [name, valueOf] of secondary) byIndex.get(name)!.get(valueOf(e))?.delete(e.key);
  };
  const enlist = (e: E): void => {
    for (const [name, valueOf] of secondary) {
      const values = byIndex.get(name)!;
      const value = valueOf(e);
      if (value === "") continue;
      let keys = values.get(value);
      if (!keys) values.set(value, (keys = new Set()));
      keys.add(e.key);
    }
  };

  const drop = (e: E): void => {
    unlist(e);
    e.release();
    if (ctx.arena.wantsCompaction()) {
      ctx.arena.compact((move) => {
        for (const x of entries.values()) if (x !== e) x.relocate(move);
      });
    }
  };

  /** `record` is `bytes` decoded, when the caller has it; undefined bytes remove the record. */
  const apply = (key: string, revision: number, record?: R, bytes?: Uint8Array): void => {
    const before = entries.get(key);
    if (before && before.revision >= revision) return;
    const decoded = bytes && (record ?? safeDecode(bytes));
    if (!bytes || !decoded) {
      if (before) drop(before);
      entries.delete(key);
      // A tombstone revision must still win over late, older updates.
      tombstones.set(key, revision);
    } else {
      const dead = tombstones.get(key);
      if (dead !== undefined && dead >= revision) return;
      tombstones.delete(key);
      if (before) drop(before);
      const entry = kind.entry(key, revision, bytes, decoded, ctx);
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
      // A view into a socket read: the entry copies it into the index's arena.
      const bytes = e.operation === "PUT" && e.length > 0 ? e.value : undefined;
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
    arenaStats: () => ctx.arena.stats(),
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
