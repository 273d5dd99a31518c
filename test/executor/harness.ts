import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { executeTask, type DownloadCache, type ExecuteResult } from "../../cell-agent/src/executor/index.js";
import { createLogStreamer, type LogStreamer } from "../../cell-agent/src/logs/index.js";
import { ensureBusyboxRootfs } from "../../cell-agent/src/rootfs/index.js";
import { createSandboxRuntime, type Sandbox, type SandboxRuntime } from "../../cell-agent/src/sandbox/index.js";
import { ActionSchema, type Action } from "../../src/gen/diego/v1/actions_pb.js";
import { LogMessageSchema, type LogMessage } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskResponseSchema, type TaskResponse } from "../../src/gen/diego/v1/task_pb.js";
import { connectNats, subjects, subjectToken } from "../../src/nats/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

export type ActionInit = MessageInitShape<typeof ActionSchema>;

/** Action builders: a(run("sh", ["-c", "exit 1"])) reads close to the JSON form. */
export const act = {
  run: (path: string, args: string[] = [], extra: Record<string, unknown> = {}): ActionInit => ({
    action: { case: "run", value: { path, args, ...extra } },
  }),
  sh: (script: string, extra: Record<string, unknown> = {}): ActionInit => act.run("sh", ["-c", script], extra),
  download: (value: { from: string; to: string; cacheKey?: string; artifact?: string; user?: string; logSource?: string }): ActionInit => ({
    action: { case: "download", value },
  }),
  upload: (value: { from: string; to: string; artifact?: string; user?: string; logSource?: string }): ActionInit => ({
    action: { case: "upload", value },
  }),
  timeout: (ms: number, action: ActionInit, logSource = ""): ActionInit => ({
    action: { case: "timeout", value: { action, timeout: BigInt(ms) * 1_000_000n, logSource } },
  }),
  emitProgress: (
    action: ActionInit,
    messages: { startMessage?: string; successMessage?: string; failureMessagePrefix?: string; logSource?: string },
  ): ActionInit => ({ action: { case: "emitProgress", value: { action, ...messages } } }),
  try: (action: ActionInit, logSource = ""): ActionInit => ({ action: { case: "try", value: { action, logSource } } }),
  serial: (actions: ActionInit[], logSource = ""): ActionInit => ({ action: { case: "serial", value: { actions, logSource } } }),
  parallel: (actions: ActionInit[], logSource = ""): ActionInit => ({
    action: { case: "parallel", value: { actions, logSource } },
  }),
  codependent: (actions: ActionInit[], logSource = ""): ActionInit => ({
    action: { case: "codependent", value: { actions, logSource } },
  }),
};

export function taskOf(
  action: ActionInit,
  extra: { logGuid?: string; logSource?: string; resultFile?: string } = {},
): TaskResponse {
  const task = create(TaskResponseSchema, {
    taskGuid: `task-${randomBytes(4).toString("hex")}`,
    domain: "test",
    logGuid: `log-${randomBytes(4).toString("hex")}`,
    action: create(ActionSchema, action) as Action,
  });
  return Object.assign(task, extra);
}

export interface ReceivedLogs {
  readonly messages: LogMessage[];
  /** "SOURCE stream: text" per message, in arrival order. */
  lines(): string[];
  texts(source?: string): string[];
}

/** One cell's worth of real components: nats-server, a runc runtime, the busybox rootfs. */
export interface Harness {
  readonly dir: string;
  readonly nats: TestNats;
  readonly nc: NatsConnection;
  readonly runtime: SandboxRuntime;
  readonly rootfs: string;
  sandbox(opts?: { env?: string[]; privileged?: boolean; memoryMb?: number }): Promise<Sandbox>;
  /** A log streamer for the task plus everything published for its log_guid. */
  logsFor(task: TaskResponse): Promise<{ logs: LogStreamer; received: ReceivedLogs }>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "diego-exec-"));
  const [nats, rootfs] = await Promise.all([startNats(), ensureBusyboxRootfs(path.join(dir, "rootfs"))]);
  const nc = await connectNats({ url: nats.url, name: "executor-test" });
  const runtime = createSandboxRuntime({ runtime: "runc", workDir: path.join(dir, "cell") });
  const sandboxes: Sandbox[] = [];
  return {
    dir,
    nats,
    nc,
    runtime,
    rootfs,
    async sandbox(opts = {}) {
      const sb = await runtime.create({
        id: `exec-${randomBytes(6).toString("hex")}`,
        layers: [rootfs],
        env: opts.env ?? [],
        privileged: opts.privileged ?? false,
        limits: { memoryMb: opts.memoryMb ?? 0, cpuWeight: 0, diskMb: 0, pids: 0 },
      });
      sandboxes.push(sb);
      return sb;
    },
    async logsFor(task) {
      const messages: LogMessage[] = [];
      // Same connection for publish and subscribe: once the streamer's flush() resolves,
      // the server has already sent every message back on this socket.
      nc.subscribe(subjects.logs(subjectToken(task.logGuid)), {
        callback: (err, msg) => {
          if (!err) messages.push(fromBinary(LogMessageSchema, msg.data));
        },
      });
      await nc.flush();
      const logs = createLogStreamer({ nc, logGuid: task.logGuid, taskGuid: task.taskGuid, defaultSource: task.logSource });
      const stream = (m: LogMessage): string => (m.stream === 2 ? "stderr" : "stdout");
      return {
        logs,
        received: {
          messages,
          lines: () => messages.map((m) => `${m.sourceName} ${stream(m)}: ${m.message}`),
          texts: (source) => messages.filter((m) => !source || m.sourceName === source).map((m) => m.message),
        },
      };
    },
    async close() {
      await Promise.allSettled(sandboxes.map((s) => s.destroy()));
      await nc.close();
      await nats.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestHttpServer {
  readonly url: string;
  readonly requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }>;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1:0; handler answers each request after its body arrived. */
export async function startHttpServer(
  handler: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void,
): Promise<TestHttpServer> {
  const requests: TestHttpServer["requests"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Executed {
  outcome: ExecuteResult;
  received: ReceivedLogs;
  sandbox: Sandbox;
  ms: number;
}

/** Runs a task in a fresh sandbox (or the given one) with real logs; returns outcome and logs. */
export async function execute(
  h: Harness,
  task: TaskResponse,
  opts: { sandbox?: Sandbox; env?: string[]; signal?: AbortSignal; downloadCache?: DownloadCache; memoryMb?: number } = {},
): Promise<Executed> {
  const sandbox = opts.sandbox ?? (await h.sandbox({ env: opts.env, memoryMb: opts.memoryMb }));
  const { logs, received } = await h.logsFor(task);
  const started = Date.now();
  const outcome = await executeTask(task, {
    sandbox,
    logs,
    signal: opts.signal ?? new AbortController().signal,
    downloadCache: opts.downloadCache,
  });
  return { outcome, received, sandbox, ms: Date.now() - started };
}
