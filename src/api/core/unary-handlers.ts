import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { CellService, TaskService } from "../../gen/diego/v1/service_pb.js";
import type { EncodedParts } from "../http/write-parts.js";
import { taskBinaryView } from "./task-binary-view.js";
import type { TaskApi } from "./task-api.js";

// The unary RPCs of TaskService and CellService, once: the Connect router (connect/services.ts)
// and the fast path for binary calls (grpc/unary.ts) both serve these.

export interface UnaryHandler<I extends DescMessage = DescMessage, O extends DescMessage = DescMessage> {
  method: DescMethodUnary<I, O>;
  handle(req: MessageShape<I>): Promise<MessageInitShape<O>>;
  /** The reply already in protobuf binary, where that is much cheaper (ListTasks): whole or in parts. */
  handleBinary?(req: MessageShape<I>): Promise<Uint8Array | EncodedParts>;
}

function unary<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  handle: (req: MessageShape<I>) => Promise<MessageInitShape<O>>,
  handleBinary?: (req: MessageShape<I>) => Promise<Uint8Array | EncodedParts>,
): UnaryHandler<I, O> {
  return { method, handle, handleBinary };
}

/** Bytes of a varint. */
const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/**
 * `messages` (each encoded) as repeated message field 1 (a ListTasksResponse), in parts that
 * are written as the client takes them rather than built into one buffer first.
 */
function repeatedField1(messages: Uint8Array[]): EncodedParts {
  return {
    count: messages.length,
    length: (i) => 1 + varintSize(messages[i]!.length) + messages[i]!.length,
    copyTo(i, target, at) {
      const m = messages[i]!;
      let p = at;
      target[p++] = 0x0a; // field 1, length-delimited
      let n = m.length;
      while (n >= 0x80) {
        target[p++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      target[p++] = n;
      target.set(m, p);
      return p + m.length - at;
    },
  };
}

export function createUnaryHandlers(api: TaskApi) {
  const t = TaskService.method;
  return {
    createTask: unary(t.createTask, async (req) => (await api.createTask(req), {})),
    getTask: unary(t.getTask, (req) => api.getTask(req.taskGuid)),
    listTasks: unary(
      t.listTasks,
      async (req) => ({ tasks: api.listTasks(req.domain).map((x) => x.record.task!) }),
      // Each task's encoding is a slice of its stored record, in the index.
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
