import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { LRPService } from "../../gen/diego/v1/lrp_pb.js";
import { CellService, LogStream, TaskEventType, TaskService } from "../../gen/diego/v1/service_pb.js";
import type { LrpApi } from "../core/lrp-api.js";
import type { TaskApi } from "../core/task-api.js";
import { createUnaryHandlers } from "../core/unary-handlers.js";
import { DiegoError } from "../core/errors.js";
import { toConnectError } from "./errors.js";

const eventTypes = { created: TaskEventType.CREATED, changed: TaskEventType.CHANGED, removed: TaskEventType.REMOVED };

/** Registers TaskService, CellService and (given its API) LRPService on a Connect router (gRPC, gRPC-Web, Connect). */
export function createConnectRoutes(api: TaskApi, logger?: Logger, lrp?: LrpApi): (router: ConnectRouter) => void {
  const unary = createUnaryHandlers(api);
  const mapped = (err: unknown): ConnectError => {
    const ce = toConnectError(err);
    if (ce.code === Code.Internal) logger?.error({ err }, "api failure");
    return ce;
  };
  const guard = async <T>(ctx: HandlerContext, fn: () => Promise<T> | T): Promise<T> => {
    // A call whose deadline passed before it could start has no effect. (Connect keeps
    // milliseconds: a deadline under one is as good as passed.)
    const left = ctx.timeoutMs();
    if (left !== undefined && left < 1) throw new ConnectError("deadline exceeded before the call started", Code.DeadlineExceeded);
    try {
      return await fn();
    } catch (err) {
      throw mapped(err);
    }
  };
  /** The same for a stream: an error part-way (StreamTooSlow, say) ends it with its own status. */
  async function* guardStream<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* messages;
    } catch (err) {
      throw mapped(err);
    }
  }

  return (router) => {
    router.service(TaskService, {
      createTask: (req, ctx) => guard(ctx, () => unary.createTask.handle(req)),
      getTask: (req, ctx) => guard(ctx, () => unary.getTask.handle(req)),
      listTasks: (req, ctx) => guard(ctx, () => unary.listTasks.handle(req)),
      cancelTask: (req, ctx) => guard(ctx, () => unary.cancelTask.handle(req)),
      deleteTask: (req, ctx) => guard(ctx, () => unary.deleteTask.handle(req)),
      async *watchTasks(req, ctx) {
        for await (const e of guardStream(api.watchTasks(req.domain, ctx.signal))) {
          yield { type: eventTypes[e.kind], task: e.task };
        }
      },
      async *streamLogs(req, ctx) {
        for await (const m of guardStream(api.streamLogs(req.logGuid, ctx.signal))) {
          const stream = m.stream === 2 ? LogStream.STDERR : LogStream.STDOUT;
          yield { logGuid: m.logGuid, sourceName: m.sourceName, stream, message: m.message, timestamp: m.timestamp, taskGuid: m.taskGuid };
        }
      },
    });
    router.service(CellService, {
      listCells: (req, ctx) => guard(ctx, () => unary.listCells.handle(req)),
    });
    if (!lrp) return;
    // Not on the binary fast path (grpc/unary.ts): its compiled codecs have no map fields (routes).
    router.service(LRPService, {
      createDesiredLRP: (req, ctx) => guard(ctx, async () => (await lrp.createDesiredLrp(req), {})),
      getDesiredLRP: (req, ctx) => guard(ctx, () => lrp.getDesiredLrp(req.processGuid)),
      listDesiredLRPs: (req, ctx) => guard(ctx, async () => ({ desiredLrps: await lrp.listDesiredLrps(req.domain) })),
      updateDesiredLRP: (req, ctx) =>
        guard(ctx, async () => {
          if (!req.update) throw new DiegoError("InvalidRequest", "update missing from request");
          await lrp.updateDesiredLrp(req.processGuid, req.update);
          return {};
        }),
      deleteDesiredLRP: (req, ctx) => guard(ctx, async () => (await lrp.deleteDesiredLrp(req.processGuid), {})),
      listActualLRPs: (req, ctx) => guard(ctx, async () => ({ actualLrps: await lrp.listActualLrps({ processGuid: req.processGuid, domain: req.domain }) })),
      getActualLRP: (req, ctx) => guard(ctx, () => lrp.getActualLrp(req.processGuid, req.index)),
      killActualLRP: (req, ctx) => guard(ctx, async () => (await lrp.killActualLrp(req.processGuid, req.index), {})),
      upsertDomain: (req, ctx) => guard(ctx, async () => (await lrp.upsertDomain(req.domain, req.ttlSeconds), {})),
      listDomains: (_req, ctx) => guard(ctx, async () => ({ domains: await lrp.listDomains() })),
      async *watchLRPs(req, ctx) {
        yield* guardStream(lrp.watchLrps(req.domain, ctx.signal));
      },
    });
  };
}
