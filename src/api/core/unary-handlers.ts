import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { CellService, TaskService } from "../../gen/diego/v1/service_pb.js";
import { FastWriter } from "../../model/index.js";
import { taskBinaryView } from "./task-binary-view.js";
import type { TaskApi } from "./task-api.js";

// The unary RPCs of TaskService and CellService, once: the Connect router (connect/services.ts)
// and the fast path for binary calls (grpc/unary.ts) both serve these.

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
  for (const p of parts) size += p.length + 6; // tag, and a length of at most 5 bytes
  const w = new FastWriter(size);
  for (const p of parts) w.tag(1, WireType.LengthDelimited).bytes(p);
  return w.finish();
}

export function createUnaryHandlers(api: TaskApi) {
  const t = TaskService.method;
  return {
    createTask: unary(t.createTask, async (req) => (await api.createTask(req), {})),
    getTask: unary(t.getTask, (req) => api.getTask(req.taskGuid)),
    listTasks: unary(
      t.listTasks,
      async (req) => ({ tasks: api.listTasks(req.domain).map((x) => x.record.task!) }),
      // Each task's encoding is cached in the index, like its JSON.
      async (req) => repeatedField1(api.listTasks(req.domain).map((x) => x.view(taskBinaryView))),
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
