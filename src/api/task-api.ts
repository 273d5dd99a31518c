import { create, fromBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { CellPresence } from "../gen/diego/v1/cell_pb.js";
import { LogMessageSchema, type LogMessage } from "../gen/diego/v1/internal_pb.js";
import type { TaskCreateRequest, TaskResponse } from "../gen/diego/v1/task_pb.js";
import { DiegoError, taskAlreadyExists, taskNotCancelable, taskNotDeletable, taskNotFound } from "../model/errors.js";
import { RecordTooLargeError } from "../model/record-limits.js";
import { stateName } from "../model/task-state.js";
import { isValidTaskGuid, validateTaskCreateRequest } from "../model/validate-task.js";
import { subjects, subjectToken } from "../nats/subjects.js";
import {
  InvalidStateTransitionError,
  TaskExistsError,
  TaskNotFoundError,
  transitions,
  type CellRegistry,
  type IndexedTask,
  type TaskIndex,
  type TaskStore,
} from "../store/index.js";
import { TaskResponseSchema } from "../gen/diego/v1/task_pb.js";

// The Task API, independent of any transport: gRPC/Connect and REST both call this and map
// DiegoError codes to their own statuses.

export type TaskEventKind = "created" | "changed" | "removed";

export interface TaskEvent {
  kind: TaskEventKind;
  task: TaskResponse;
}

export interface TaskApi {
  createTask(req: TaskCreateRequest): Promise<void>;
  getTask(guid: string): Promise<TaskResponse>;
  listTasks(domain?: string): IndexedTask[];
  /** The REST JSON of each task (of one domain). */
  listTasksJson(domain?: string): Buffer[];
  cancelTask(guid: string): Promise<void>;
  deleteTask(guid: string): Promise<void>;
  listCells(): CellPresence[];
  watchTasks(domain: string, signal: AbortSignal): AsyncIterable<TaskEvent>;
  streamLogs(logGuid: string, signal: AbortSignal): AsyncIterable<LogMessage>;
}

export interface TaskApiDeps {
  store: TaskStore;
  index: TaskIndex;
  cells: CellRegistry;
  nc: NatsConnection;
  logger?: Logger;
  /**
   * How many events or log lines a stream may hold for a reader that does not keep up before it
   * is ended (default 10,000): a stopped reader must not make the receptor buffer without end.
   */
  streamBacklog?: number;
}

const STREAM_BACKLOG = 10_000;

export function createTaskApi(deps: TaskApiDeps): TaskApi {
  const { store, index, cells, nc } = deps;
  const backlog = deps.streamBacklog ?? STREAM_BACKLOG;

  const requireGuid = (guid: string): void => {
    if (guid === "") throw new DiegoError("InvalidRequest", "task_guid missing from request");
    // No task can have such a guid, and it may not even be a legal NATS key ("a b", "a*").
    if (!isValidTaskGuid(guid)) throw taskNotFound(guid);
  };

  return {
    async createTask(req) {
      const problems = validateTaskCreateRequest(req);
      if (problems.length > 0) throw new DiegoError("InvalidTask", problems.join(", "));
      try {
        await store.create(req);
      } catch (err) {
        if (err instanceof TaskExistsError) throw taskAlreadyExists();
        if (err instanceof RecordTooLargeError) throw new DiegoError("RequestTooLarge", err.message);
        throw err;
      }
      // No auction kick here: the auctioneer sees every new PENDING task through its KV watch.
    },

    async getTask(guid) {
      requireGuid(guid);
      const stored = await store.get(guid);
      if (!stored) throw taskNotFound(guid);
      return stored.record.task!;
    },

    listTasks: (domain) => index.list(domain),
    listTasksJson: (domain) => index.listJson(domain),

    async cancelTask(guid) {
      requireGuid(guid);
      let cellId = "";
      try {
        await store.apply(guid, (r, now) => {
          cellId = r.task!.cellId;
          return transitions.cancel(r, now);
        });
      } catch (err) {
        throw mapStoreError(err, guid, (e) => taskNotCancelable(stateName(e.from)));
      }
      // The cell kills the container; if it is gone, the converger already covers the task.
      if (cellId) nc.publish(subjects.cellCancel(cellId), guid);
    },

    async deleteTask(guid) {
      requireGuid(guid);
      try {
        await store.resolve(guid);
      } catch (err) {
        throw mapStoreError(err, guid, () => taskNotDeletable());
      }
    },

    listCells: () => cells.list(),

    watchTasks: (domain, signal) => watchTasks(index, domain, signal, backlog),

    streamLogs: (logGuid, signal) => streamLogs(nc, logGuid, signal, backlog),
  };
}

function mapStoreError(
  err: unknown,
  guid: string,
  onTransition: (e: InvalidStateTransitionError) => DiegoError,
): unknown {
  if (err instanceof TaskNotFoundError) return taskNotFound(guid);
  if (err instanceof InvalidStateTransitionError) return onTransition(err);
  return err;
}

/** Pushes index changes into an async iterator until the signal aborts. */
async function* watchTasks(index: TaskIndex, domain: string, signal: AbortSignal, backlog: number): AsyncIterable<TaskEvent> {
  const queue = createQueue<TaskEvent>(signal, backlog);
  const unsubscribe = index.subscribe((_guid, before, after) => {
    const entry = after ?? before;
    // The domain is known without decoding the record: watchers of other domains skip it.
    if (!entry || (domain && entry.domain !== domain)) return;
    const task = entry.record.task;
    if (!task) return;
    const kind: TaskEventKind = !before ? "created" : !after ? "removed" : "changed";
    queue.push({ kind, task: create(TaskResponseSchema, task) });
  });
  try {
    yield* queue.iterate();
  } finally {
    unsubscribe();
  }
}

const tooSlow = (backlog: number): DiegoError =>
  new DiegoError("StreamTooSlow", `the reader fell more than ${backlog} messages behind; reconnect to go on`);

async function* streamLogs(nc: NatsConnection, logGuid: string, signal: AbortSignal, backlog: number): AsyncIterable<LogMessage> {
  const sub = nc.subscribe(subjects.logs(subjectToken(logGuid)));
  const onAbort = (): void => sub.unsubscribe();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const m of sub) {
      if (sub.getPending() > backlog) throw tooSlow(backlog);
      try {
        yield fromBinary(LogMessageSchema, m.data);
      } catch {
        // A malformed message from outside the system: skip it.
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    sub.unsubscribe();
  }
}

/** Items waiting for a reader; more than `backlog` of them ends the iteration with StreamTooSlow. */
function createQueue<T>(signal: AbortSignal, backlog: number): { push(v: T): void; iterate(): AsyncIterable<T> } {
  let items: T[] = [];
  let overflowed = false;
  let wake: (() => void) | undefined;
  signal.addEventListener("abort", () => wake?.(), { once: true });
  return {
    push(v) {
      if (overflowed) return;
      if (items.length >= backlog) {
        overflowed = true;
        items = [];
      } else {
        items.push(v);
      }
      wake?.();
    },
    async *iterate() {
      while (!signal.aborted) {
        if (overflowed) throw tooSlow(backlog);
        const item = items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}
