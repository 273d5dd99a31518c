import { execFile } from "node:child_process";
import http2 from "node:http2";
import path from "node:path";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskResponseSchema, TaskState as EsTaskState } from "../../src/gen/diego/v1/task_pb.js";
import { TaskEventType, type WatchTasksResponse } from "../../src/gen/grpc-js/diego/v1/service.js";
import { TaskCreateRequest, TaskState, type TaskResponse } from "../../src/gen/grpc-js/diego/v1/task.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createGrpcApi, grpcError, type GrpcApi } from "./grpc-client.js";
import { createRestClient, uniqueGuid, type ErrorBody, type RestClient } from "./rest-client.js";

// One task lifecycle (create, get, list, cancel, get, delete, get) driven through each protocol
// the receptor's single port serves: gRPC (stock @grpc/grpc-js client, h2c), Connect JSON over
// HTTP/1.1 (plain fetch) and REST; then a stock Python gRPC client and the WatchTasks stream.

const execFileAsync = promisify(execFile);
const PYTHON_PROBE = path.join(import.meta.dirname, "grpc_probe.py");

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let rest: RestClient;
let grpcApi: GrpcApi;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  rest = createRestClient(receptor.url);
  grpcApi = createGrpcApi(receptor.address);
});

afterAll(async () => {
  grpcApi?.close();
  await receptor?.stop();
  await nats?.dispose();
});

/** What every protocol shows of a task, in REST spelling. */
interface TaskView {
  taskGuid: string;
  domain: string;
  stack: string;
  state: string;
  cellId: string;
  failed: boolean;
  failureReason: string;
  result: string;
  createdAt: bigint;
}

/** The gRPC status each API error travels as; the REST name leads the message. */
type Failure = "NotFound" | "AlreadyExists" | "InvalidArgument" | "FailedPrecondition";

interface Driver {
  create(guid: string, domain: string): Promise<void>;
  /** A request with an invalid task_guid and an empty domain. */
  createInvalid(): Promise<void>;
  get(guid: string): Promise<TaskView>;
  list(domain: string): Promise<string[]>;
  cancel(guid: string): Promise<void>;
  delete(guid: string): Promise<void>;
  /** Checks how the call failed: its status in this protocol and the REST error name. */
  expectFailure(call: Promise<unknown>, failure: Failure, restName: string): Promise<void>;
}

const stateName = (s: string): string => s.replace(/^TASK_STATE_/, "");

const grpcCodes: Record<Failure, grpc.status> = {
  NotFound: grpc.status.NOT_FOUND,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
};

function grpcView(t: TaskResponse): TaskView {
  return { ...t, state: stateName(TaskState[t.state]) };
}

const grpcDriver = (): Driver => ({
  create: (guid, domain) =>
    grpcApi.createTask(TaskCreateRequest.fromPartial({ taskGuid: guid, domain, stack: "lucid64", action: { run: { path: "/bin/true" } } })),
  createInvalid: () => grpcApi.createTask(TaskCreateRequest.fromPartial({ taskGuid: "bad guid", stack: "lucid64", action: { run: { path: "/x" } } })),
  get: async (guid) => grpcView(await grpcApi.getTask(guid)),
  list: async (domain) => (await grpcApi.listTasks(domain)).tasks.map((t) => t.taskGuid),
  cancel: (guid) => grpcApi.cancelTask(guid),
  delete: (guid) => grpcApi.deleteTask(guid),
  async expectFailure(call, failure, restName) {
    const err = await grpcError(call);
    expect({ code: grpc.status[err.code], details: err.details }).toMatchObject({
      code: grpc.status[grpcCodes[failure]],
      details: expect.stringMatching(new RegExp(`^${restName}: `)),
    });
    expect(err.metadata.get("diego-error-name")).toEqual([restName]);
  },
});

const connectStatus: Record<Failure, [number, string]> = {
  NotFound: [404, "not_found"],
  AlreadyExists: [409, "already_exists"],
  InvalidArgument: [400, "invalid_argument"],
  FailedPrecondition: [400, "failed_precondition"],
};

class ConnectCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: { code: string; message: string },
    readonly errorName: string | null,
  ) {
    super(`${status} ${body.code}: ${body.message}`);
  }
}

/** Connect's unary JSON protocol: POST /<service>/<method>, JSON in, JSON out. */
async function connectCall<T = Record<string, unknown>>(method: string, body: unknown): Promise<T> {
  const res = await fetch(`${receptor.url}/diego.v1.TaskService/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
    body: JSON.stringify(body),
  });
  expect(res.headers.get("content-type")).toBe("application/json");
  const json = (await res.json()) as T;
  if (res.status !== 200) {
    throw new ConnectCallError(res.status, json as { code: string; message: string }, res.headers.get("diego-error-name"));
  }
  return json;
}

/** Connect JSON leaves out default values and writes int64 as a string. */
function connectView(t: Record<string, unknown>): TaskView {
  return {
    taskGuid: (t.taskGuid as string) ?? "",
    domain: (t.domain as string) ?? "",
    stack: (t.stack as string) ?? "",
    state: stateName((t.state as string) ?? "TASK_STATE_UNSPECIFIED"),
    cellId: (t.cellId as string) ?? "",
    failed: (t.failed as boolean) ?? false,
    failureReason: (t.failureReason as string) ?? "",
    result: (t.result as string) ?? "",
    createdAt: BigInt((t.createdAt as string) ?? "0"),
  };
}

const connectDriver = (): Driver => ({
  // Proto field names on the way in (Connect accepts both); camelCase elsewhere.
  create: async (guid, domain) =>
    void (await connectCall("CreateTask", { task_guid: guid, domain, stack: "lucid64", action: { run: { path: "/bin/true" } } })),
  createInvalid: async () => void (await connectCall("CreateTask", { taskGuid: "bad guid", stack: "lucid64", action: { run: { path: "/x" } } })),
  get: async (guid) => connectView(await connectCall("GetTask", { taskGuid: guid })),
  list: async (domain) =>
    ((await connectCall<{ tasks?: Array<{ taskGuid: string }> }>("ListTasks", { domain })).tasks ?? []).map((t) => t.taskGuid),
  cancel: async (guid) => void (await connectCall("CancelTask", { taskGuid: guid })),
  delete: async (guid) => void (await connectCall("DeleteTask", { taskGuid: guid })),
  async expectFailure(call, failure, restName) {
    const err = await call.then(
      () => expect.fail("expected the call to fail"),
      (e: unknown) => e as ConnectCallError,
    );
    expect(err).toBeInstanceOf(ConnectCallError);
    const [status, code] = connectStatus[failure];
    expect({ status: err.status, code: err.body.code, errorName: err.errorName }).toEqual({ status, code, errorName: restName });
    expect(err.body.message).toMatch(new RegExp(`^${restName}: `));
  },
});

const restStatus: Record<Failure, number> = { NotFound: 404, AlreadyExists: 409, InvalidArgument: 400, FailedPrecondition: 409 };

class RestCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(`${status} ${body.name}: ${body.message}`);
  }
}

async function restOk(reply: Promise<{ status: number; text: string }>, status: number): Promise<string> {
  const r = await reply;
  if (r.status !== status) throw new RestCallError(r.status, JSON.parse(r.text) as ErrorBody);
  return r.text;
}

function restView(text: string): TaskView {
  const t = JSON.parse(text) as Record<string, unknown>;
  return {
    taskGuid: t.task_guid as string,
    domain: t.domain as string,
    stack: t.stack as string,
    state: t.state as string,
    cellId: t.cell_id as string,
    failed: t.failed as boolean,
    failureReason: t.failure_reason as string,
    result: t.result as string,
    createdAt: BigInt(/"created_at":([0-9]+)/.exec(text)![1]!),
  };
}

const restDriver = (): Driver => ({
  create: async (guid, domain) =>
    void (await restOk(rest.createTask({ task_guid: guid, domain, stack: "lucid64", action: { run: { path: "/bin/true" } } }), 201)),
  createInvalid: async () => void (await restOk(rest.createTask({ task_guid: "bad guid", stack: "lucid64", action: { run: { path: "/x" } } }), 201)),
  get: async (guid) => restView(await restOk(rest.getTask(guid), 200)),
  list: async (domain) =>
    (JSON.parse(await restOk(rest.request("GET", `/v1/domains/${domain}/tasks`), 200)) as Array<{ task_guid: string }>).map((t) => t.task_guid),
  cancel: async (guid) => void (await restOk(rest.cancelTask(guid), 200)),
  delete: async (guid) => void (await restOk(rest.deleteTask(guid), 200)),
  async expectFailure(call, failure, restName) {
    const err = await call.then(
      () => expect.fail("expected the call to fail"),
      (e: unknown) => e as RestCallError,
    );
    expect(err).toBeInstanceOf(RestCallError);
    expect({ status: err.status, name: err.body.name }).toEqual({ status: restStatus[failure], name: restName });
  },
});

describe.each([
  ["gRPC (@grpc/grpc-js, h2c)", grpcDriver],
  ["Connect JSON over HTTP/1.1", connectDriver],
  ["REST", restDriver],
])("task lifecycle over %s", (_name, makeDriver) => {
  it("creates, reads, lists, cancels, deletes, and then no longer finds a task", async () => {
    const d = makeDriver();
    const guid = uniqueGuid("life");
    const domain = uniqueGuid("life-domain");

    const before = BigInt(Date.now()) * 1_000_000n;
    await d.create(guid, domain);
    const after = BigInt(Date.now()) * 1_000_000n;
    await d.expectFailure(d.create(guid, domain), "AlreadyExists", "TaskGuidAlreadyExists");
    await d.expectFailure(d.createInvalid(), "InvalidArgument", "InvalidTask");

    const pending = await d.get(guid);
    expect(pending).toMatchObject({ taskGuid: guid, domain, stack: "lucid64", state: "PENDING", cellId: "", failed: false });
    expect(pending.createdAt).toBeGreaterThanOrEqual(before - 1_000_000n);
    expect(pending.createdAt).toBeLessThanOrEqual(after + 1_000_000n);
    expect(await d.list(domain)).toEqual([guid]);

    await d.expectFailure(d.delete(guid), "FailedPrecondition", "TaskNotDeletable");
    await d.cancel(guid);
    expect(await d.get(guid)).toMatchObject({
      taskGuid: guid,
      state: "COMPLETED",
      failed: true,
      failureReason: "task was cancelled",
      result: "",
      createdAt: pending.createdAt,
    });
    await d.expectFailure(d.cancel(guid), "FailedPrecondition", "TaskNotCancelable");

    await d.delete(guid);
    await d.expectFailure(d.get(guid), "NotFound", "TaskNotFound");
    await d.expectFailure(d.cancel(guid), "NotFound", "TaskNotFound");
    await d.expectFailure(d.delete(guid), "NotFound", "TaskNotFound");
    expect(await d.list(domain)).toEqual([]);
  });
});

describe("REST and Connect over HTTP/2 cleartext (prior knowledge) on the same port", () => {
  it("creates, reads and reports errors as over HTTP/1.1", async () => {
    const session = http2.connect(receptor.url);
    const call = (method: string, p: string, body?: string, contentType = "application/json") =>
      new Promise<{ status: number; type: string | undefined; text: string }>((resolve, reject) => {
        const req = session.request({ ":method": method, ":path": p, ...(body ? { "content-type": contentType } : {}) });
        let status = 0;
        let type: string | undefined;
        let text = "";
        req.on("response", (h) => {
          status = Number(h[":status"]);
          type = h["content-type"] as string | undefined;
        });
        req.setEncoding("utf8");
        req.on("data", (d: string) => (text += d));
        req.on("end", () => resolve({ status, type, text }));
        req.on("error", reject);
        req.end(body);
      });
    try {
      const guid = uniqueGuid("h2");
      const created = await call("POST", "/v1/tasks", JSON.stringify({ task_guid: guid, domain: "h2", stack: "s", action: { run: { path: "/x" } } }));
      expect(created).toMatchObject({ status: 201, text: "" });
      const got = await call("GET", `/v1/tasks/${guid}`);
      expect(got).toMatchObject({ status: 200, type: "application/json" });
      expect(JSON.parse(got.text)).toMatchObject({ task_guid: guid, state: "PENDING" });
      const missing = await call("GET", "/v1/tasks/nope-h2");
      expect({ status: missing.status, body: JSON.parse(missing.text) }).toEqual({
        status: 404,
        body: { name: "TaskNotFound", message: "task with guid 'nope-h2' not found" },
      });
      const viaConnect = await call("POST", "/diego.v1.TaskService/GetTask", JSON.stringify({ taskGuid: guid }));
      expect(JSON.parse(viaConnect.text)).toMatchObject({ taskGuid: guid, state: "TASK_STATE_PENDING" });
    } finally {
      session.close();
    }
  });
});

describe("gRPC error messages", () => {
  it("reach a Node client unescaped, punctuation and non-ASCII included", async () => {
    const err = await grpcError(grpcApi.getTask("grüße, 100%"));
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toBe("TaskNotFound: task with guid 'grüße, 100%' not found");
    const invalid = await grpcError(grpcApi.createTask(TaskCreateRequest.fromPartial({})));
    expect(invalid.details).toBe("InvalidTask: Invalid field: task_guid, Invalid field: domain, Invalid field: stack, Invalid field: action");
  });
});

describe("gRPC calls off the common path", () => {
  it("lists hundreds of tasks of very different sizes exactly as REST does", async () => {
    const domain = uniqueGuid("many");
    const guids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const guid = uniqueGuid("many-task");
      guids.push(guid);
      // Sizes across one-, two- and three-byte length prefixes.
      const big = i % 50 === 0;
      const annotation = big ? "x".repeat(9_000 + i) : "a".repeat(i);
      const env = big ? Array.from({ length: 200 }, (_, k) => ({ name: `VAR_${k}`, value: "v".repeat(100) })) : [];
      await grpcApi.createTask(TaskCreateRequest.fromPartial({ taskGuid: guid, domain, stack: "s", annotation, env, action: { run: { path: "/x" } } }));
    }
    const viaGrpc = (await grpcApi.listTasks(domain)).tasks;
    const viaRest = JSON.parse((await rest.request("GET", `/v1/domains/${domain}/tasks`)).text) as Array<Record<string, unknown>>;
    expect(viaGrpc.map((t) => t.taskGuid).sort()).toEqual([...guids].sort());
    const restByGuid = new Map(viaRest.map((t) => [t.task_guid, t]));
    for (const t of viaGrpc) {
      expect(t.annotation).toBe((restByGuid.get(t.taskGuid)?.annotation as string | undefined) ?? "");
      expect(t.env.length).toBe(((restByGuid.get(t.taskGuid)?.env as unknown[] | undefined) ?? []).length);
      expect(String(restByGuid.get(t.taskGuid)?.created_at)).toHaveLength(19);
    }
    expect((await grpcApi.listTasks(uniqueGuid("no-such-domain"))).tasks).toEqual([]);
  });

  it("accepts gzip-compressed requests", async () => {
    const gzip = createGrpcApi(receptor.address, { "grpc.default_compression_algorithm": 2 });
    try {
      const guid = uniqueGuid("gzip");
      await gzip.createTask(TaskCreateRequest.fromPartial({ taskGuid: guid, domain: "gzip", stack: "s", annotation: "z".repeat(5000), action: { run: { path: "/x" } } }));
      expect((await gzip.getTask(guid)).annotation).toBe("z".repeat(5000));
      expect((await grpcError(gzip.getTask(uniqueGuid("gzip-missing")))).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      gzip.close();
    }
  });

  it("answers INVALID_ARGUMENT to bytes that are not the request message, and RESOURCE_EXHAUSTED to one over 1 MiB", async () => {
    const raw = new grpc.Client(receptor.address, grpc.credentials.createInsecure());
    const call = (path: string, body: Buffer): Promise<grpc.ServiceError> =>
      new Promise((resolve, reject) => {
        raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, (err) => (err ? resolve(err) : reject(new Error("call succeeded"))));
      });
    try {
      const garbage = await call("/diego.v1.TaskService/GetTask", Buffer.from([0x0a, 0xff, 0xff, 0xff]));
      expect(garbage.code).toBe(grpc.status.INVALID_ARGUMENT);
      const huge = Buffer.concat([Buffer.from([0x7a, 0x80, 0x80, 0x48]), Buffer.alloc(0x120000, 0x61)]);
      expect((await call("/diego.v1.TaskService/CreateTask", huge)).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      const unknown = await call("/diego.v1.TaskService/NoSuchMethod", Buffer.alloc(0));
      expect(unknown.code).toBe(grpc.status.UNIMPLEMENTED);
      // Said in gRPC's terms, not as an HTTP 404 the client had to translate.
      expect(unknown.details).toBe("unknown method /diego.v1.TaskService/NoSuchMethod");
      // And in Connect's, to a Connect client.
      const connect = await connectCall("NoSuchMethod", {}).catch((err: unknown) => err);
      expect(connect).toBeInstanceOf(ConnectCallError);
      expect((connect as ConnectCallError).status).toBe(404);
      expect((connect as ConnectCallError).body).toEqual({ code: "unimplemented", message: "unknown method /diego.v1.TaskService/NoSuchMethod" });
      // And the connection still serves.
      expect((await grpcApi.listCells()).cells).toEqual([]);
    } finally {
      raw.close();
    }
  });

  it("keeps serving when clients reset unary calls half way through the request or before the reply", async () => {
    const session = http2.connect(`http://${receptor.address}`);
    const headers = { ":method": "POST", ":path": "/diego.v1.TaskService/CreateTask", "content-type": "application/grpc" };
    // CANCEL is what a client's cancel or deadline sends; INTERNAL_ERROR makes an 'error' event.
    const reset = (stream: http2.ClientHttp2Stream, code: number): Promise<void> =>
      new Promise((resolve) => {
        stream.on("error", () => undefined);
        stream.on("close", () => resolve());
        stream.close(code);
      });
    try {
      for (let i = 0; i < 20; i++) {
        // Half a message: its prefix promises 100 bytes, 10 come.
        const half = session.request(headers);
        half.write(Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.alloc(10, 0x61)]));
        await reset(half, i % 2 ? http2.constants.NGHTTP2_CANCEL : http2.constants.NGHTTP2_INTERNAL_ERROR);
        // A whole request, reset before the reply can come.
        const guid = uniqueGuid("reset");
        const whole = session.request(headers);
        const body = Buffer.from(TaskCreateRequest.encode(TaskCreateRequest.fromPartial({ taskGuid: guid, domain: "reset", stack: "s", action: { run: { path: "/x" } } })).finish());
        const prefix = Buffer.from([0, 0, 0, 0, 0]);
        prefix.writeUInt32BE(body.length, 1);
        whole.end(Buffer.concat([prefix, body]));
        await reset(whole, i % 2 ? http2.constants.NGHTTP2_INTERNAL_ERROR : http2.constants.NGHTTP2_CANCEL);
      }
      expect((await grpcApi.listCells()).cells).toEqual([]);
      const guid = uniqueGuid("after-resets");
      await grpcApi.createTask(TaskCreateRequest.fromPartial({ taskGuid: guid, domain: "reset", stack: "s", action: { run: { path: "/x" } } }));
      expect((await grpcApi.getTask(guid)).taskGuid).toBe(guid);
    } finally {
      session.close();
    }
  });
});

describe("one task seen through every protocol", () => {
  it("shows the same fields and the same created_at over gRPC, Connect JSON and REST", async () => {
    const guid = uniqueGuid("same");
    await grpcApi.createTask(
      TaskCreateRequest.fromPartial({
        taskGuid: guid,
        domain: "views",
        stack: "lucid64",
        rootFs: "docker:///org/image#v1",
        env: [{ name: "A", value: "1" }],
        cpuWeight: 50,
        memoryMb: 256,
        diskMb: 512,
        privileged: true,
        action: { timeout: { action: { run: { path: "/bin/sleep", args: ["1"], user: "vcap" } }, timeout: 5_000_000_000n } },
        annotation: "note",
        securityGroupRules: [{ protocol: "tcp", destination: "10.0.0.0/8", portRange: { start: 80, end: 443 } }],
      }),
    );
    const viaGrpc = await grpcApi.getTask(guid);
    const viaConnect = await connectCall<Record<string, unknown>>("GetTask", { taskGuid: guid });
    const restText = (await rest.getTask(guid)).text;
    const viaRest = JSON.parse(restText) as Record<string, unknown>;

    expect(viaRest).toMatchObject({
      task_guid: guid,
      root_fs: "docker:///org/image#v1",
      env: [{ name: "A", value: "1" }],
      cpu_weight: 50,
      memory_mb: 256,
      disk_mb: 512,
      privileged: true,
      action: { timeout: { action: { run: { path: "/bin/sleep", args: ["1"], user: "vcap" } }, timeout: 5_000_000_000 } },
      annotation: "note",
      security_group_rules: [{ protocol: "tcp", destination: "10.0.0.0/8", port_range: { start: 80, end: 443 } }],
    });
    expect(viaConnect).toMatchObject({
      taskGuid: guid,
      rootFs: "docker:///org/image#v1",
      cpuWeight: 50,
      privileged: true,
      action: { timeout: { timeout: "5000000000" } },
      securityGroupRules: [{ protocol: "tcp", destination: "10.0.0.0/8", portRange: { start: 80, end: 443 } }],
      state: "TASK_STATE_PENDING",
    });
    expect(viaGrpc.action?.timeout?.timeout).toBe(5_000_000_000n);
    expect(viaGrpc.state).toBe(TaskState.TASK_STATE_PENDING);
    expect(restText).toContain(`"created_at":${viaGrpc.createdAt}`);
    expect(viaConnect.createdAt).toBe(viaGrpc.createdAt.toString());
  });
});

describe("a stock Python gRPC client", () => {
  it("creates and reads tasks with hand-encoded protobuf and gets standard status codes", async () => {
    const missing = uniqueGuid("py-missing");
    const guid = uniqueGuid("py");
    const domain = uniqueGuid("py-domain");
    const { stdout } = await execFileAsync("/usr/bin/python3", [PYTHON_PROBE, receptor.address, missing, guid, domain], {
      timeout: 30_000,
    });
    const out = JSON.parse(stdout) as {
      missing: { code: string; details: string };
      duplicate: { code: string; details: string };
      invalid: { code: string; details: string };
      created_bytes: number;
      found_hex: string;
      found_contains_guid: boolean;
    };
    expect(out.missing).toEqual({ code: "NOT_FOUND", details: `TaskNotFound: task with guid '${missing}' not found` });
    expect(out.duplicate).toEqual({ code: "ALREADY_EXISTS", details: "TaskGuidAlreadyExists: task already exists" });
    expect(out.invalid.code).toBe("INVALID_ARGUMENT");
    expect(out.invalid.details).toBe("InvalidTask: Invalid field: task_guid, Invalid field: domain, Invalid field: stack, Invalid field: action");
    expect(out.created_bytes).toBe(0);
    expect(out.found_contains_guid).toBe(true);

    const found = fromBinary(TaskResponseSchema, Buffer.from(out.found_hex, "hex"));
    expect(found).toMatchObject({ taskGuid: guid, domain, stack: "lucid64", state: EsTaskState.PENDING });
    expect(found.action?.action).toMatchObject({ case: "run", value: { path: "/bin/true" } });
    expect(JSON.parse((await rest.getTask(guid)).text)).toMatchObject({ task_guid: guid, domain, action: { run: { path: "/bin/true" } } });
  });
});

/** Collects a server stream's messages; `next` waits for the first one matching. */
function collect<T>(stream: grpc.ClientReadableStream<T>): { next(match: (m: T) => boolean, ms?: number): Promise<T> } {
  const seen: T[] = [];
  let failure: Error | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => waiters.forEach((w) => w());
  stream.on("data", (m: T) => {
    seen.push(m);
    wake();
  });
  stream.on("error", (err: grpc.ServiceError) => {
    if (err.code !== grpc.status.CANCELLED) failure = err;
    wake();
  });
  return {
    next(match, ms = 10_000) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => done(() => reject(new Error("no matching stream message in time"))), ms);
        const done = (settle: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        const check = (): void => {
          const i = seen.findIndex(match);
          if (i >= 0) {
            const [m] = seen.splice(i, 1);
            done(() => resolve(m!));
          } else if (failure) done(() => reject(failure));
        };
        waiters.add(check);
        check();
      });
    },
  };
}

type Collector = ReturnType<typeof collect<WatchTasksResponse>>;

/**
 * A watch starts asynchronously on the server, so a task created right after the call may come
 * before the subscription: create probe tasks in the domain until every stream has shown one.
 */
async function untilWatching(streams: Collector[], domain: string): Promise<void> {
  const probe = uniqueGuid("probe");
  let live = false;
  const allLive = Promise.all(streams.map((s) => s.next((e) => e.task?.taskGuid.startsWith(probe) ?? false))).then(() => {
    live = true;
  });
  for (let i = 0; !live; i++) {
    expect(i).toBeLessThan(100);
    await rest.createTask({ task_guid: `${probe}-${i}`, domain, stack: "lucid64", action: { run: { path: "/x" } } });
    await Promise.race([allLive, new Promise((r) => setTimeout(r, 100))]);
  }
}

describe("WatchTasks (gRPC server streaming)", () => {
  it("streams created, changed and removed events of one domain's tasks, in order", async () => {
    const domain = uniqueGuid("watch-domain");
    const call = grpcApi.watchTasks(domain);
    const events = collect(call);
    try {
      await untilWatching([events], domain);
      const guid = uniqueGuid("watched");
      const other = uniqueGuid("other-domain-task");
      await rest.createTask({ task_guid: other, domain: `${domain}-not`, stack: "lucid64", action: { run: { path: "/x" } } });
      await rest.createTask({ task_guid: guid, domain, stack: "lucid64", action: { run: { path: "/x" } } });
      await rest.cancelTask(guid);
      await rest.deleteTask(guid);

      const mine = (e: WatchTasksResponse): boolean => e.task?.taskGuid === guid || e.task?.taskGuid === other;
      const got: Array<[string, string]> = [];
      for (let i = 0; i < 4; i++) {
        const e = await events.next(mine);
        expect(e.task?.taskGuid).toBe(guid);
        got.push([TaskEventType[e.type], stateName(TaskState[e.task!.state])]);
      }
      expect(got).toEqual([
        ["TASK_EVENT_TYPE_CREATED", "PENDING"],
        ["TASK_EVENT_TYPE_CHANGED", "COMPLETED"],
        ["TASK_EVENT_TYPE_CHANGED", "RESOLVING"],
        ["TASK_EVENT_TYPE_REMOVED", "RESOLVING"],
      ]);
    } finally {
      call.cancel();
    }
  });

  it("lets many watchers follow at once, each seeing every event", async () => {
    const domain = uniqueGuid("many-watchers");
    const calls = Array.from({ length: 5 }, () => grpcApi.watchTasks(domain));
    const streams = calls.map((c) => collect(c));
    try {
      await untilWatching(streams, domain);
      const guid = uniqueGuid("fanout");
      await rest.createTask({ task_guid: guid, domain, stack: "lucid64", action: { run: { path: "/x" } } });
      await rest.cancelTask(guid);
      for (const s of streams) {
        expect((await s.next((e) => e.task?.taskGuid === guid)).type).toBe(TaskEventType.TASK_EVENT_TYPE_CREATED);
        const changed = await s.next((e) => e.task?.taskGuid === guid);
        expect(changed.type).toBe(TaskEventType.TASK_EVENT_TYPE_CHANGED);
        expect(changed.task?.failureReason).toBe("task was cancelled");
      }
    } finally {
      calls.forEach((c) => c.cancel());
    }
  });
});
