import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { CellService, TaskService } from "../gen/diego/v1/service_pb.js";
import type { TaskApi } from "./task-api.js";

// The unary RPCs of TaskService and CellService, once: the Connect router and the gRPC fast
// path (grpc-unary.ts) both serve these.

export interface UnaryHandler<I extends DescMessage = DescMessage, O extends DescMessage = DescMessage> {
  method: DescMethodUnary<I, O>;
  handle(req: MessageShape<I>): Promise<MessageInitShape<O>>;
  /** The reply already in protobuf binary, where that is much cheaper (ListTasks). */
  handleBinary?(req: MessageShape<I>): Promise<Uint8Array>;
}

function unary<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  handle: (req: MessageShape<I>) => Promise<MessageInitShape<O>>,
  handleBinary?: (req: MessageShape<I>) => Promise<Uint8Array>,
): UnaryHandler<I, O> {
  return { method, handle, handleBinary };
}

/** `parts` (each an encoded message) as repeated message field 1: a ListTasksResponse. */
function repeatedField1(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += 1 + varintLength(p.length) + p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out[at++] = 0x0a; // field 1, length-delimited
    for (let n = p.length; ; n >>>= 7) {
      if (n < 0x80) {
        out[at++] = n;
        break;
      }
      out[at++] = (n & 0x7f) | 0x80;
    }
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const varintLength = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

export function createUnaryHandlers(api: TaskApi) {
  const t = TaskService.method;
  return {
    createTask: unary(t.createTask, async (req) => (await api.createTask(req), {})),
    getTask: unary(t.getTask, (req) => api.getTask(req.taskGuid)),
    listTasks: unary(
      t.listTasks,
      async (req) => ({ tasks: api.listTasks(req.domain).map((x) => x.record.task!) }),
      // Each task's encoding is cached in the index, like its JSON.
      async (req) => repeatedField1(api.listTasks(req.domain).map((x) => x.binary())),
    ),
    cancelTask: unary(t.cancelTask, async (req) => (await api.cancelTask(req.taskGuid), {})),
    deleteTask: unary(t.deleteTask, async (req) => (await api.deleteTask(req.taskGuid), {})),
    listCells: unary(CellService.method.listCells, async () => ({ cells: api.listCells() })),
  };
}

export type UnaryHandlers = ReturnType<typeof createUnaryHandlers>;

/** Handlers by gRPC path, e.g. "/diego.v1.TaskService/CreateTask". */
export function unaryHandlersByPath(handlers: UnaryHandlers): Map<string, UnaryHandler> {
  return new Map(
    Object.values(handlers).map((h) => [`/${h.method.parent.typeName}/${h.method.name}`, h as unknown as UnaryHandler]),
  );
}
