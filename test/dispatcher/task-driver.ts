import { create } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ActionSchema, RunActionSchema } from "../../src/gen/diego/v1/actions_pb.js";
import { TaskCreateRequestSchema, TaskState, type TaskCreateRequest } from "../../src/gen/diego/v1/task_pb.js";
import { connectNats, openTasksBucket } from "../../src/nats/index.js";
import { createTaskStore, transitions, type Outcome, type StoredTask, type TaskStore } from "../../src/store/index.js";
import { afterAll, beforeAll } from "vitest";
import { startNats, type TestNats } from "../fixtures/nats.js";

// Drives tasks through their states with the store's own transitions, standing in for the
// receptor, auctioneer and cells (which other tests cover).

export interface TaskDriver {
  nc: NatsConnection;
  kv: KV;
  store: TaskStore;
  close(): Promise<void>;
}

export async function openDriver(natsUrl: string): Promise<TaskDriver> {
  const nc = await connectNats({ url: natsUrl, name: "test-driver" });
  const kv = await openTasksBucket(nc);
  return { nc, kv, store: createTaskStore(nc), close: () => nc.drain().catch(() => undefined) };
}

/** A nats-server and a driver shared by one test file: started before its tests, stopped after. */
export function useDriver(): { readonly nats: TestNats; readonly driver: TaskDriver } {
  const env = {} as { nats: TestNats; driver: TaskDriver };
  beforeAll(async () => {
    env.nats = await startNats();
    env.driver = await openDriver(env.nats.url);
  });
  afterAll(async () => {
    await env.driver?.close();
    await env.nats?.dispose();
  });
  return env;
}

export type TaskFields = Partial<Omit<TaskCreateRequest, "$typeName" | "$unknown">>;

export function taskRequest(guid: string, fields: TaskFields = {}): TaskCreateRequest {
  return create(TaskCreateRequestSchema, {
    taskGuid: guid,
    domain: "test-domain",
    stack: "lucid64",
    action: create(ActionSchema, { action: { case: "run", value: create(RunActionSchema, { path: "/bin/true" }) } }),
    ...fields,
  });
}

export const FAILED: Outcome = { failed: true, failureReason: "Exited with status 1", result: "" };

/** Creates a task and runs it to COMPLETED as `cellId` would. */
export async function completeTask(
  store: TaskStore,
  req: TaskCreateRequest,
  outcome: Outcome = FAILED,
  cellId = "test-cell",
): Promise<StoredTask> {
  await store.create(req);
  await store.apply(req.taskGuid, transitions.claim(cellId, "session-1"));
  await store.apply(req.taskGuid, transitions.start(cellId));
  return (await store.apply(req.taskGuid, transitions.complete(cellId, outcome))).after;
}

export const stateOf = async (store: TaskStore, guid: string): Promise<TaskState | undefined> =>
  (await store.get(guid))?.record.task?.state;

/** Polls until check() returns a value other than undefined/false, or fails after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
