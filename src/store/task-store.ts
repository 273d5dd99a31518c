import { decoderFor, encoderFor, maxNewRecordBytes, RecordTooLargeError } from "../model/index.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { TASKS_BUCKET } from "../nats/index.js";
import { TaskRecordSchema, type TaskRecord } from "../gen/diego/v1/internal_pb.js";
import type { TaskCreateRequest } from "../gen/diego/v1/task_pb.js";
import { nowNanos } from "./clock.js";
import { TaskContentionError, TaskExistsError, TaskNotFoundError } from "./errors.js";
import { createKvClient, KvConflictError } from "./kv-client.js";
import type { RecordWriteListener } from "./record-index.js";
import { newTaskRecord, startResolving, type Transition } from "./transitions.js";

// The task store: one KV entry per task, key = task_guid, value = TaskRecord (protobuf binary).
// Every write names the revision it read, so a change made in between makes it fail and the
// transition is re-evaluated against the fresh record.

export interface StoredTask {
  record: TaskRecord;
  revision: number;
}

/** What a transition did: the record it was applied to and the record as it now is. */
export interface Applied {
  before: StoredTask;
  /** The same object as `before` when the transition changed nothing. */
  after: StoredTask;
}

/**
 * Called after every successful local write with the record and its stored bytes (the receptor's
 * index uses it to read its own writes); both are undefined for a removal.
 */
export type WriteListener = RecordWriteListener<TaskRecord>;

export interface TaskStore {
  create(req: TaskCreateRequest): Promise<StoredTask>;
  get(guid: string): Promise<StoredTask | undefined>;
  /**
   * Applies one transition with compare-and-swap, retrying on conflicts. A caller that has just
   * read (or written) the task passes it as `known` to save the first read.
   */
  apply(guid: string, transition: Transition, known?: StoredTask): Promise<Applied>;
  /** DELETE: COMPLETED -> RESOLVING, then removed. */
  resolve(guid: string): Promise<void>;
  /** Removes a task if it is still at this revision (reaping, resolving). */
  remove(guid: string, revision: number): Promise<void>;
  onWrite(listener: WriteListener): void;
}

const MAX_CAS_ATTEMPTS = 64;

export const encodeRecord: (r: TaskRecord) => Uint8Array = encoderFor<TaskRecord>(TaskRecordSchema);
export const decodeRecord: (bytes: Uint8Array) => TaskRecord = decoderFor<TaskRecord>(TaskRecordSchema);

/** Every store write goes through kv-client.ts, which names a lost compare-and-swap. */
export function isCasConflict(err: unknown): boolean {
  return err instanceof KvConflictError;
}

/** Reads and writes go straight to the bucket's stream on `nc` (see kv-client.ts). */
export function createTaskStore(nc: NatsConnection): TaskStore {
  const client = createKvClient(nc, TASKS_BUCKET);
  const listeners: WriteListener[] = [];
  const notify = (guid: string, revision: number, record?: TaskRecord, bytes?: Uint8Array): void => {
    for (const l of listeners) l(guid, revision, record, bytes);
  };

  const get = async (guid: string): Promise<StoredTask | undefined> => {
    const entry = await client.get(guid);
    if (!entry || entry.operation !== "PUT" || entry.value.length === 0) return undefined;
    return { record: decodeRecord(entry.value), revision: entry.revision };
  };

  const apply = async (guid: string, transition: Transition, known?: StoredTask): Promise<Applied> => {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = attempt === 0 && known ? known : await get(guid);
      if (!current) throw new TaskNotFoundError(guid);
      const updated = transition(current.record, nowNanos());
      if (updated === current.record) return { before: current, after: current };
      const bytes = encodeRecord(updated);
      try {
        const revision = await client.put(guid, bytes, current.revision);
        notify(guid, revision, updated, bytes);
        return { before: current, after: { record: updated, revision } };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
    throw new TaskContentionError(guid);
  };

  const remove = async (guid: string, revision: number): Promise<void> => {
    // A delete marker, not a purge: nats-server 2.9.10 (Debian 12) moves every watcher of the
    // bucket past a subject purge (a rollup), so watchers silently miss other tasks' updates.
    // With history 1 the marker replaces the record all the same.
    const marker = await client.delete(guid, revision);
    notify(guid, marker);
  };

  /** Writes a new key, or over a delete marker (a resolved task's guid may be used again). */
  const putNew = async (guid: string, value: Uint8Array): Promise<number> => {
    try {
      return await client.put(guid, value, 0);
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
    const entry = await client.get(guid);
    if (!entry || entry.operation === "PUT") throw new TaskExistsError(guid);
    try {
      return await client.put(guid, value, entry.revision);
    } catch (err) {
      throw isCasConflict(err) ? new TaskExistsError(guid) : err;
    }
  };

  return {
    async create(req) {
      const record = newTaskRecord(req, nowNanos());
      const bytes = encodeRecord(record);
      // One that would not fit NATS's max_payload through every transition is never stored.
      const limit = maxNewRecordBytes(nc.info?.max_payload);
      if (bytes.length > limit) throw new RecordTooLargeError(bytes.length, limit, nc.info?.max_payload ?? limit);
      const revision = await putNew(req.taskGuid, bytes);
      notify(req.taskGuid, revision, record, bytes);
      return { record, revision };
    },
    get,
    apply,
    async resolve(guid) {
      const { after: resolving } = await apply(guid, startResolving);
      try {
        await remove(guid, resolving.revision);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        // Changed after we took it: reaped meanwhile (gone), or handed back by the converger.
        throw (await get(guid)) ? new TaskContentionError(guid) : new TaskNotFoundError(guid);
      }
    },
    remove,
    onWrite(listener) {
      listeners.push(listener);
    },
  };
}
