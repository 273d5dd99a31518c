import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { TaskRecord } from "../gen/diego/v1/internal_pb.js";
import type { TaskState } from "../gen/diego/v1/task_pb.js";
import { createRecordIndex, RecordEntry, type EntryContext, type IndexListener as RecordIndexListener, type RecordIndex, type RecordKind, type RecordView } from "./record-index.js";
import { decodeRecord, type TaskStore } from "./task-store.js";

// The index of tasks: a record index (record-index.ts) keyed by task guid, with secondary
// indexes by domain and by cell.

/** A task in the index: what lists and watches read without decoding, and the record. */
export class IndexedTask extends RecordEntry<TaskRecord> {
  readonly state: TaskState;
  readonly domain: string;
  /** The cell it is on ("" when on none). */
  readonly cellId: string;

  constructor(key: string, revision: number, bytes: Uint8Array, record: TaskRecord, ctx: EntryContext<TaskRecord>) {
    super(key, revision, bytes, record, ctx);
    const task = record.task!;
    this.state = task.state;
    // One string per domain and per cell, shared by their tasks, rather than a copy per record.
    this.domain = ctx.intern(task.domain);
    this.cellId = ctx.intern(task.cellId);
  }

  get guid(): string {
    return this.key;
  }
}

export const taskKind: RecordKind<TaskRecord, IndexedTask, "domain" | "cell"> = {
  name: "tasks",
  decode: decodeRecord,
  entry: (key, revision, bytes, record, ctx) => new IndexedTask(key, revision, bytes, record, ctx),
  secondary: { domain: (t) => t.domain, cell: (t) => t.cellId },
};

/** A view of tasks that a layer above the store defines (see record-index.ts). */
export type TaskView<V> = RecordView<IndexedTask, V>;

export type IndexListener = RecordIndexListener<IndexedTask>;

export interface TaskIndex extends RecordIndex<IndexedTask, "domain" | "cell"> {
  /** Every task, or those of one domain. */
  list(domain?: string): IndexedTask[];
}

export interface TaskIndexOptions {
  /** The connection the bucket is on: a disconnect makes the view not current at once. */
  nc?: NatsConnection;
  logger?: Logger;
  /** Views to make ahead of the first list, whenever writes pause (the receptor's REST JSON). */
  warm?: readonly TaskView<unknown>[];
}

/** The index of the tasks bucket; with `store`, this process's own writes show at once. */
export async function createTaskIndex(kv: KV, store?: TaskStore, opts: TaskIndexOptions = {}): Promise<TaskIndex> {
  const index = await createRecordIndex(kv, taskKind, { ...opts, writes: store });
  return { ...index, list: (domain) => (domain ? index.listBy("domain", domain) : index.list()) };
}
