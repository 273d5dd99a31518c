import type { KV } from "@nats-io/kv";
import type { TaskRecord } from "../gen/diego/v1/internal_pb.js";
import { TaskResponseSchema, type TaskResponse } from "../gen/diego/v1/task_pb.js";
import { encoderFor } from "../model/codecs.js";
import { taskResponseToJson } from "../model/task-json.js";
import { decodeRecord, type TaskStore } from "./task-store.js";

// An in-memory view of every task, fed by a watch on the KV bucket (and by this process's own
// writes, so a list right after a create includes it). Listing 100,000 tasks then costs no
// round trip: each entry keeps its JSON, encoded once per change.

export interface IndexedTask {
  revision: number;
  record: TaskRecord;
  /** The REST JSON of record.task, encoded lazily and cached. */
  json(): string;
  /** record.task as protobuf binary (a TaskResponse), encoded lazily and cached. */
  binary(): Uint8Array;
}

export type IndexListener = (guid: string, before: IndexedTask | undefined, after: IndexedTask | undefined) => void;

export interface TaskIndex {
  /** Resolves once the watch has replayed every stored task. */
  ready(): Promise<void>;
  get(guid: string): IndexedTask | undefined;
  list(domain?: string): IndexedTask[];
  listJson(domain?: string): string;
  size(): number;
  /** Observes every change, after the initial replay. */
  subscribe(listener: IndexListener): () => void;
  stop(): Promise<void>;
}

const encodeTaskResponse = encoderFor<TaskResponse>(TaskResponseSchema);

function entry(revision: number, record: TaskRecord): IndexedTask {
  let cached: string | undefined;
  let binary: Uint8Array | undefined;
  return {
    revision,
    record,
    json: () => (cached ??= taskResponseToJson(record.task as TaskResponse)),
    binary: () => (binary ??= encodeTaskResponse(record.task!)),
  };
}

export async function createTaskIndex(kv: KV, store?: TaskStore): Promise<TaskIndex> {
  const tasks = new Map<string, IndexedTask>();
  const domains = new Map<string, Set<string>>();
  const listeners = new Set<IndexListener>();
  const tombstones = new Map<string, number>();
  let initialized = false;
  let markReady!: () => void;
  const readyPromise = new Promise<void>((r) => (markReady = r));

  const apply = (guid: string, revision: number, record: TaskRecord | undefined): void => {
    const before = tasks.get(guid);
    if (before && before.revision >= revision) return;
    if (before) domains.get(before.record.task!.domain)?.delete(guid);
    if (!record) {
      tasks.delete(guid);
      // A tombstone revision must still win over late, older updates.
      tombstones.set(guid, revision);
    } else {
      const dead = tombstones.get(guid);
      if (dead !== undefined && dead >= revision) return;
      tombstones.delete(guid);
      const after = entry(revision, record);
      tasks.set(guid, after);
      const domain = record.task!.domain;
      let set = domains.get(domain);
      if (!set) domains.set(domain, (set = new Set()));
      set.add(guid);
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
  const watch = await kv.watch();
  if (status.values === 0) {
    initialized = true;
    markReady();
  }
  void (async () => {
    for await (const e of watch) {
      // This process's own writes come back through the watch: skip decoding what is known.
      const known = tasks.get(e.key);
      if (known && known.revision >= e.revision) {
        markInitialized(e.isUpdate);
        continue;
      }
      const record = e.operation === "PUT" && e.length > 0 ? safeDecode(e.value) : undefined;
      apply(e.key, e.revision, record);
      markInitialized(e.isUpdate);
      // Tombstones only matter while writes race the watch; keep the map small.
      if (tombstones.size > 10_000) tombstones.clear();
    }
  })();

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
    listJson: (domain) => `[${list(domain).map((t) => t.json()).join(",")}]`,
    size: () => tasks.size,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      watch.stop();
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
