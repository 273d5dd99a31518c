import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { startResilientWatch } from "./kv-watch.js";
import type { TaskRecord } from "../gen/diego/v1/internal_pb.js";
import { TaskState, type TaskResponse } from "../gen/diego/v1/task_pb.js";
import { FastReader } from "../model/fast-reader.js";
import { taskResponseToJson } from "../model/task-json.js";
import { decodeRecord, type TaskStore } from "./task-store.js";

// An in-memory view of every task, fed by a watch on the KV bucket (and by this process's own
// writes, so a list right after a create includes it). Listing 100,000 tasks then costs no
// round trip.
//
// Each entry keeps the stored bytes, not the decoded record: 100,000 decoded records held about
// 400 MB of small objects, and every full garbage collection walked them all (a list of
// 100,000 tasks took a second, mostly in GC). The record is decoded when asked for and kept
// only while something still holds it.

export interface IndexedTask {
  readonly guid: string;
  readonly revision: number;
  readonly state: TaskState;
  readonly domain: string;
  /** The record, decoded on demand (the same object while it is still in use). */
  readonly record: TaskRecord;
  /** The REST JSON of record.task as UTF-8, made on first use and cached. */
  jsonBytes(): Buffer;
  /** Whether jsonBytes() is cached already. */
  readonly jsonReady: boolean;
  /** record.task as protobuf binary (a TaskResponse): a view into the stored bytes, cached. */
  binary(): Uint8Array;
}

export type IndexListener = (guid: string, before: IndexedTask | undefined, after: IndexedTask | undefined) => void;

export interface TaskIndex {
  /** Resolves once the watch has replayed every stored task. */
  ready(): Promise<void>;
  get(guid: string): IndexedTask | undefined;
  list(domain?: string): IndexedTask[];
  /** The REST JSON of each task (of one domain), as UTF-8. */
  listJson(domain?: string): Buffer[];
  size(): number;
  /** Observes every change, after the initial replay. */
  subscribe(listener: IndexListener): () => void;
  /** Since when the view has been current without a break (see kv-watch.ts). */
  currentSince(): number | undefined;
  stop(): Promise<void>;
}

class IndexEntry implements IndexedTask {
  readonly guid: string;
  readonly state: TaskState;
  readonly domain: string;
  private decoded: WeakRef<TaskRecord>;
  private json?: Buffer;
  private task?: Uint8Array;

  constructor(
    readonly revision: number,
    private readonly bytes: Uint8Array,
    record: TaskRecord,
    domain: string,
  ) {
    this.guid = record.task!.taskGuid;
    this.state = record.task!.state;
    this.domain = domain;
    this.decoded = new WeakRef(record);
  }

  get record(): TaskRecord {
    let r = this.decoded.deref();
    if (!r) {
      r = decodeRecord(this.bytes);
      this.decoded = new WeakRef(r);
    }
    return r;
  }

  jsonBytes(): Buffer {
    if (!this.json) {
      // Not through `record`: a list decodes every task in one go, and a WeakRef keeps its
      // target alive until the current job ends, so all of them at once. A local dies young.
      const record = this.decoded.deref() ?? decodeRecord(this.bytes);
      this.json = Buffer.from(taskResponseToJson(record.task as TaskResponse));
    }
    return this.json;
  }

  get jsonReady(): boolean {
    return this.json !== undefined;
  }

  binary(): Uint8Array {
    // Found on first use: only the receptor's gRPC lists ask, not every index on every write.
    return (this.task ??= taskField(this.bytes));
  }
}

/** The bytes of field 1 (task) of an encoded TaskRecord; empty if it has none. */
function taskField(record: Uint8Array): Uint8Array {
  const r = new FastReader(record);
  let found: Uint8Array | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 0x0a) {
      // Twice would mean "merge the two"; no writer of ours does that, but be exact anyway.
      if (found) return concat(found, r.bytes());
      found = r.bytes();
    } else {
      r.skip(tag & 7, tag >>> 3);
    }
  }
  return found ?? new Uint8Array(0);
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => Buffer.concat([a, b]);

export interface TaskIndexOptions {
  /** The connection the bucket is on: a disconnect makes the view not current at once. */
  nc?: NatsConnection;
  logger?: Logger;
  /**
   * Encode each task's REST JSON ahead of the first list, in small slices whenever writes pause
   * (the receptor): otherwise the first list after a start encodes them all, ~3 s at 100,000.
   */
  warmJson?: boolean;
}

/** How long writes must pause before JSON warming runs, and how many tasks it does per turn. */
const WARM_AFTER_MS = 500;
const WARM_SLICE = 500;

export async function createTaskIndex(kv: KV, store?: TaskStore, opts: TaskIndexOptions = {}): Promise<TaskIndex> {
  const tasks = new Map<string, IndexedTask>();
  const domains = new Map<string, Set<string>>();
  const domainNames = new Map<string, string>();
  const listeners = new Set<IndexListener>();
  const tombstones = new Map<string, number>();
  let initialized = false;
  const warmer = opts.warmJson ? createJsonWarmer(tasks) : undefined;
  let markReady!: () => void;
  const readyPromise = new Promise<void>((r) => (markReady = r));

  /** `record` is `bytes` decoded, when the caller has it; undefined bytes remove the task. */
  const apply = (guid: string, revision: number, record?: TaskRecord, bytes?: Uint8Array): void => {
    const before = tasks.get(guid);
    if (before && before.revision >= revision) return;
    if (before) domains.get(before.domain)?.delete(guid);
    const decoded = bytes && (record ?? safeDecode(bytes));
    if (!bytes || !decoded) {
      tasks.delete(guid);
      // A tombstone revision must still win over late, older updates.
      tombstones.set(guid, revision);
    } else {
      const dead = tombstones.get(guid);
      if (dead !== undefined && dead >= revision) return;
      tombstones.delete(guid);
      const name = decoded.task!.domain;
      // One string per domain, shared by its tasks, rather than a copy per decoded record.
      const domain = domainNames.get(name) ?? (domainNames.set(name, name), name);
      let set = domains.get(domain);
      if (!set) domains.set(domain, (set = new Set()));
      set.add(guid);
      tasks.set(guid, new IndexEntry(revision, bytes, decoded, domain));
      warmer?.add(guid);
    }
    if (initialized) {
      const after = tasks.get(guid);
      for (const l of listeners) l(guid, before, after);
    }
  };
  store?.onWrite(apply);

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
    name: "tasks",
    onEntry(e) {
      // This process's own writes come back through the watch: nothing to do for those.
      const known = tasks.get(e.key);
      if (known && known.revision >= e.revision) {
        markInitialized(e.isUpdate);
        return;
      }
      // A copy: the entry's value is a view into a whole socket read, which it would keep alive.
      const bytes = e.operation === "PUT" && e.length > 0 ? e.value.slice() : undefined;
      apply(e.key, e.revision, undefined, bytes);
      markInitialized(e.isUpdate);
      // Tombstones only matter while writes race the watch; keep the map small.
      if (tombstones.size > 10_000) tombstones.clear();
    },
  });

  const list = (domain?: string): IndexedTask[] => {
    if (!domain) return [...tasks.values()];
    const guids = domains.get(domain);
    if (!guids) return [];
    const out: IndexedTask[] = [];
    for (const g of guids) {
      const t = tasks.get(g);
      if (t) out.push(t);
    }
    return out;
  };

  return {
    ready: () => readyPromise,
    get: (guid) => tasks.get(guid),
    list,
    listJson: (domain) => list(domain).map((t) => t.jsonBytes()),
    size: () => tasks.size,
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

/** Encodes the JSON of tasks added to it, a slice per event-loop turn, once writes pause. */
function createJsonWarmer(tasks: Map<string, IndexedTask>): { add(guid: string): void; stop(): void } {
  const cold = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let busyUntil = 0;
  const slice = (): void => {
    timer = undefined;
    if (Date.now() < busyUntil) return void (timer = setTimeout(slice, WARM_AFTER_MS).unref());
    let n = 0;
    for (const guid of cold) {
      cold.delete(guid);
      tasks.get(guid)?.jsonBytes();
      if (++n === WARM_SLICE) break;
    }
    if (cold.size > 0) timer = setTimeout(slice, 0).unref();
  };
  return {
    add(guid) {
      cold.add(guid);
      busyUntil = Date.now() + WARM_AFTER_MS;
      timer ??= setTimeout(slice, WARM_AFTER_MS).unref();
    },
    stop() {
      clearTimeout(timer);
      cold.clear();
    },
  };
}

function safeDecode(bytes: Uint8Array): TaskRecord | undefined {
  try {
    return decodeRecord(bytes);
  } catch {
    // An undecodable record is treated as absent (the converger removes it).
    return undefined;
  }
}
