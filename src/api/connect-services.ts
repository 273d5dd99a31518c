import type { ConnectRouter } from "@connectrpc/connect";
import { CellService, TaskEventType, TaskService, LogStream } from "../gen/diego/v1/service_pb.js";
import type { Logger } from "pino";
import { toConnectError } from "./connect-errors.js";
import type { TaskApi } from "./task-api.js";
import { createUnaryHandlers } from "./unary-handlers.js";

const eventTypes = { created: TaskEventType.CREATED, changed: TaskEventType.CHANGED, removed: TaskEventType.REMOVED };

/** Registers TaskService and CellService on a Connect router (gRPC, gRPC-Web, Connect). */
export function createConnectRoutes(api: TaskApi, logger?: Logger): (router: ConnectRouter) => void {
  const unary = createUnaryHandlers(api);
  const guard = async <T>(fn: () => Promise<T> | T): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const ce = toConnectError(err);
      if (ce.code === 13) logger?.error({ err }, "task api failure");
      throw ce;
    }
  };

  return (router) => {
    router.service(TaskService, {
      createTask: (req) => guard(() => unary.createTask.handle(req)),
      getTask: (req) => guard(() => unary.getTask.handle(req)),
      listTasks: (req) => guard(() => unary.listTasks.handle(req)),
      cancelTask: (req) => guard(() => unary.cancelTask.handle(req)),
      deleteTask: (req) => guard(() => unary.deleteTask.handle(req)),
      async *watchTasks(req, ctx) {
        for await (const e of api.watchTasks(req.domain, ctx.signal)) {
          yield { type: eventTypes[e.kind], task: e.task };
        }
      },
      async *streamLogs(req, ctx) {
        for await (const m of api.streamLogs(req.logGuid, ctx.signal)) {
          const stream = m.stream === 2 ? LogStream.STDERR : LogStream.STDOUT;
          yield { logGuid: m.logGuid, sourceName: m.sourceName, stream, message: m.message, timestamp: m.timestamp, taskGuid: m.taskGuid };
        }
      },
    });
    router.service(CellService, {
      listCells: (req) => guard(() => unary.listCells.handle(req)),
    });
  };
}
