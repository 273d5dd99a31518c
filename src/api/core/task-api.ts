import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { CellPresence } from "../../gen/diego/v1/cell_pb.js";
import type { LogMessage } from "../../gen/diego/v1/internal_pb.js";
import type { TaskCreateRequest, TaskResponse } from "../../gen/diego/v1/task_pb.js";
import { DiegoError, isValidTaskGuid, RecordTooLargeError, stateName, taskAlreadyExists, taskNotCancelable, taskNotDeletable, taskNotFound, validateTaskCreateRequest } from "../../model/index.js";
import { subjects } from "../../nats/index.js";
import { TaskExistsError, transitions, type CellRegistry, type IndexedTask, type TaskIndex, type TaskStore } from "../../store/index.js";
import { fromStoreError } from "./errors.js";
import { streamLogs, taskEventSource, watchTasks, type EventSource, type TaskEvent } from "./events.js";

// The Task API, independent of any protocol: REST, gRPC and Connect all call this and map
// DiegoError names to their own statuses (rest/errors.ts, grpc/errors.ts, connect/errors.ts).

export interface TaskApi {
  createTask(req: TaskCreateRequest): Promise<void>;
  getTask(guid: string): Promise<TaskResponse>;
  /** Every task (of one domain) from the index; each protocol renders them through its view. */
  listTasks(domain?: string): IndexedTask[];
  cancelTask(guid: string): Promise<void>;
  deleteTask(guid: string): Promise<void>;
  listCells(): CellPresence[];
  watchTasks(domain: string, signal: AbortSignal): AsyncIterable<TaskEvent>;
  /** Task changes as a source, for a stream that also carries other events (/v1/events). */
  taskEvents(domain: string): EventSource<TaskEvent>;
  /** How many events a stream holds for a slow reader before it ends with StreamTooSlow. */
  readonly streamBacklog: number;
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

    async cancelTask(guid) {
      requireGuid(guid);
      let cellId: string;
      try {
        const { before } = await store.apply(guid, transitions.cancel);
        cellId = before.record.task!.cellId;
      } catch (err) {
        throw fromStoreError(err, guid, (e) => taskNotCancelable(stateName(e.from)));
      }
      // The cell kills the container; if it is gone, the converger already covers the task.
      if (cellId) nc.publish(subjects.cellCancel(cellId), guid);
    },

    async deleteTask(guid) {
      requireGuid(guid);
      try {
        await store.resolve(guid);
      } catch (err) {
        throw fromStoreError(err, guid, () => taskNotDeletable());
      }
    },

    listCells: () => cells.list(),

    watchTasks: (domain, signal) => watchTasks(index, domain, signal, backlog),

    taskEvents: (domain) => taskEventSource(index, domain),

    streamBacklog: backlog,

    streamLogs: (logGuid, signal) => streamLogs(nc, logGuid, signal, backlog),
  };
}
