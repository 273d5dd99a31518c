import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startDispatcher, type Dispatcher, type DispatcherOptions } from "../../src/dispatcher/index.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { createTaskIndex, type TaskIndex } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { refusedPort, startCallbackServer, type CallbackServer, type ReceivedCallback } from "./callback-server.js";
import { completeTask, openDriver, sleep, stateOf, taskRequest, waitFor, type TaskDriver } from "./task-driver.js";

let nats: TestNats;
let driver: TaskDriver;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  nats = await startNats();
  driver = await openDriver(nats.url);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await driver.close();
  await nats.dispose();
});

async function dispatcher(opts: Partial<DispatcherOptions>): Promise<Dispatcher> {
  const d = await startDispatcher({ natsUrl: nats.url, callbackTimeoutMs: 1000, retryIntervalMs: 1000, completedTtlMs: 4000, concurrency: 10, ...opts });
  cleanups.push(() => d.stop());
  return d;
}

async function server(answer: (c: ReceivedCallback) => number | "hang"): Promise<CallbackServer> {
  const s = await startCallbackServer(answer);
  cleanups.push(() => s.close());
  return s;
}

/** Times at which a task entered RESOLVING: one per callback round. */
async function watchRounds(guid: string): Promise<number[]> {
  const index: TaskIndex = await createTaskIndex(driver.kv);
  await index.ready();
  cleanups.push(() => index.stop());
  const rounds: number[] = [];
  index.subscribe((g, before, after) => {
    if (g === guid && after?.record.task?.state === TaskState.RESOLVING && before?.record.task?.state !== TaskState.RESOLVING) {
      rounds.push(Date.now());
    }
  });
  return rounds;
}

const gone = (guid: string) => async () => (await driver.store.get(guid)) === undefined;

/** Splits call times into rounds: calls less than gapMs apart belong to the same round. */
function groupRounds(calls: ReceivedCallback[], gapMs: number): number[][] {
  const rounds: number[][] = [];
  for (const c of calls) {
    const last = rounds.at(-1);
    if (last && c.at - last.at(-1)! < gapMs) last.push(c.at);
    else rounds.push([c.at]);
  }
  return rounds;
}

describe("completion callbacks", () => {
  it("posts the TaskResponse JSON once and removes the task on 200", async () => {
    const cb = await server(() => 200);
    await dispatcher({});
    const guid = "cb-ok";
    await completeTask(
      driver.store,
      taskRequest(guid, { completionCallbackUrl: cb.url(guid), annotation: "my-annotation" }),
      { failed: false, failureReason: "", result: "the result" },
    );
    await waitFor("removal", gone(guid));
    const calls = cb.callsFor(guid);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.contentType).toBe("application/json");
    expect(calls[0]!.body).toMatchObject({
      task_guid: guid,
      domain: "test-domain",
      state: "COMPLETED",
      failed: false,
      failure_reason: "",
      result: "the result",
      annotation: "my-annotation",
      completion_callback_url: cb.url(guid),
    });
    expect(typeof calls[0]!.body.created_at).toBe("number");
  });

  it("sends failed tasks with their failure reason", async () => {
    const cb = await server(() => 200);
    await dispatcher({});
    const guid = "cb-failed";
    await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: cb.url(guid) }), {
      failed: true,
      failureReason: "Exited with status 1",
      result: "",
    });
    await waitFor("removal", gone(guid));
    expect(cb.callsFor(guid).map((c) => c.body)).toEqual([
      expect.objectContaining({ task_guid: guid, failed: true, failure_reason: "Exited with status 1", result: "" }),
    ]);
  });

  it.each([404, 400, 500, 302])("a %i answer resolves the task after one call", async (status) => {
    const cb = await server(() => status);
    await dispatcher({});
    const guid = `cb-status-${status}`;
    await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: cb.url(guid) }));
    await waitFor("removal", gone(guid));
    await sleep(300);
    expect(cb.callsFor(guid)).toHaveLength(1);
  });

  it.each([503, 504])("%i then 200: two calls, then the task is removed", async (busy) => {
    const cb = await server((c) => (c.nth === 1 ? busy : 200));
    await dispatcher({});
    const guid = `cb-busy-once-${busy}`;
    await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: cb.url(guid) }));
    await waitFor("removal", gone(guid));
    await sleep(300);
    const calls = cb.callsFor(guid);
    expect(calls).toHaveLength(2);
    // The retry is immediate, not after the retry interval.
    expect(calls[1]!.at - calls[0]!.at).toBeLessThan(500);
  });

  it("503 always: rounds of 3 calls a retry interval apart, removed at the TTL, then silence", async () => {
    const cb = await server(() => 503);
    await dispatcher({ retryIntervalMs: 1000, completedTtlMs: 4000 });
    const guid = "cb-always-503";
    const completed = await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: cb.url(guid) }));
    const completedAt = Number(completed.record.firstCompletedAt / 1_000_000n);

    // After the first round the task is still there, handed back to COMPLETED.
    await waitFor("first round", () => cb.callsFor(guid).length >= 3 || undefined);
    await waitFor("hand-back", async () => (await stateOf(driver.store, guid)) === TaskState.COMPLETED);
    expect(cb.callsFor(guid)).toHaveLength(3);

    await waitFor("removal at ttl", gone(guid), 8000);
    const removedAt = Date.now();
    expect(removedAt - completedAt).toBeGreaterThanOrEqual(3900);
    expect(removedAt - completedAt).toBeLessThan(5500);

    const rounds = groupRounds(cb.callsFor(guid), 500);
    expect(rounds.map((r) => r.length)).toEqual([3, 3, 3, 3]);
    expect(rounds[0]![0]! - completedAt).toBeLessThan(500);
    for (let i = 1; i < rounds.length; i++) {
      const gap = rounds[i]![0]! - rounds[i - 1]!.at(-1)!;
      expect(gap).toBeGreaterThanOrEqual(950);
      expect(gap).toBeLessThan(1500);
    }

    const callsAtRemoval = cb.callsFor(guid).length;
    await sleep(1500);
    expect(cb.callsFor(guid)).toHaveLength(callsAtRemoval);
  });

  it("connection refused: no immediate retry, tried again on later rounds, removed at the TTL", async () => {
    const port = await refusedPort();
    await dispatcher({ retryIntervalMs: 700, completedTtlMs: 3000 });
    const guid = "cb-refused";
    const rounds = await watchRounds(guid);
    const completed = await completeTask(
      driver.store,
      taskRequest(guid, { completionCallbackUrl: `http://127.0.0.1:${port}/cb/${guid}` }),
    );
    const completedAt = Number(completed.record.firstCompletedAt / 1_000_000n);
    await waitFor("removal at ttl", gone(guid), 6000);
    expect(Date.now() - completedAt).toBeGreaterThanOrEqual(2900);
    expect(rounds.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < rounds.length; i++) expect(rounds[i]! - rounds[i - 1]!).toBeGreaterThanOrEqual(650);
  });

  it("a connection that breaks before any answer is not retried at once, only on later rounds", async () => {
    const net = await import("node:net");
    const connections: number[] = [];
    const breaker = net.createServer((socket) => {
      connections.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((r) => breaker.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => breaker.close(() => r())));
    const port = (breaker.address() as import("node:net").AddressInfo).port;
    await dispatcher({ retryIntervalMs: 700, completedTtlMs: 2500 });
    const guid = "cb-reset";
    await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: `http://127.0.0.1:${port}/cb/${guid}` }));
    await waitFor("removal at ttl", gone(guid), 6000);
    // One connection per round, rounds a retry interval apart.
    expect(connections.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < connections.length; i++) expect(connections[i]! - connections[i - 1]!).toBeGreaterThanOrEqual(650);
  });

  it("a callback server that comes back later gets the callback on a later round", async () => {
    const port = await refusedPort();
    await dispatcher({ retryIntervalMs: 700, completedTtlMs: 10_000 });
    const guid = "cb-comes-back";
    const rounds = await watchRounds(guid);
    await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: `http://127.0.0.1:${port}/cb/${guid}` }));
    await waitFor("a failed first round", async () => rounds.length >= 1 && (await stateOf(driver.store, guid)) === TaskState.COMPLETED);

    const received: string[] = [];
    const http = await import("node:http");
    const back = http.createServer((req, res) => {
      received.push(req.url ?? "");
      res.end();
    });
    await new Promise<void>((r) => back.listen(port, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => back.close(() => r())));

    await waitFor("removal", gone(guid), 5000);
    expect(received).toEqual([`/cb/${guid}`]);
    expect(rounds.length).toBeGreaterThanOrEqual(2);
  });

  it("a server that never answers does not hold up the others", async () => {
    const cb = await server((c) => (c.path.startsWith("/slow/") ? "hang" : 200));
    // The timeout leaves room for a loaded machine; what matters is that no fast call waits for it.
    await dispatcher({ concurrency: 8, callbackTimeoutMs: 2000, retryIntervalMs: 10_000, completedTtlMs: 20_000 });
    const slow = Array.from({ length: 5 }, (_, i) => `slow-${i}`);
    const fast = Array.from({ length: 20 }, (_, i) => `fast-${i}`);
    await Promise.all(slow.map((g) => completeTask(driver.store, taskRequest(g, { completionCallbackUrl: cb.url(g, "slow") }))));
    await waitFor("slow calls in flight", () => cb.received.filter((c) => c.path.startsWith("/slow/")).length === 5 || undefined);

    await Promise.all(fast.map((g) => completeTask(driver.store, taskRequest(g, { completionCallbackUrl: cb.url(g, "fast") }))));
    await waitFor("fast tasks resolved", async () => {
      for (const g of fast) if (await driver.store.get(g)) return undefined;
      return true;
    });
    const fastCalls = cb.received.filter((c) => c.path.startsWith("/fast/"));
    const slowCalls = cb.received.filter((c) => c.path.startsWith("/slow/"));
    expect(fastCalls.map((c) => c.guid).sort()).toEqual([...fast].sort());
    const lastFast = Math.max(...fastCalls.map((c) => c.at));
    // Every fast callback arrived while all five slow ones were still hanging.
    for (const s of slowCalls) expect(s.closedAt === undefined || s.closedAt > lastFast).toBe(true);
    expect(cb.maxOpen()).toBeLessThanOrEqual(8);

    // The slow ones time out and go back to COMPLETED for a later round.
    await waitFor("slow tasks handed back", async () => {
      for (const g of slow) if ((await stateOf(driver.store, g)) !== TaskState.COMPLETED) return undefined;
      return true;
    });
    for (const s of cb.received.filter((c) => c.path.startsWith("/slow/"))) {
      expect(s.closedAt).toBeDefined();
      expect(s.closedAt! - s.at).toBeGreaterThanOrEqual(1900);
      expect(s.closedAt! - s.at).toBeLessThan(3500);
    }
  });

  it("a dispatcher stopped mid-callback hands the task back at once instead of leaving it RESOLVING", async () => {
    const cb = await server(() => "hang");
    const d = await dispatcher({ callbackTimeoutMs: 30_000, completedTtlMs: 30_000 });
    const guid = "cb-stop-mid-call";
    await completeTask(driver.store, taskRequest(guid, { completionCallbackUrl: cb.url(guid) }));
    await waitFor("the call", () => cb.callsFor(guid).length === 1 || undefined);
    expect(await stateOf(driver.store, guid)).toBe(TaskState.RESOLVING);
    await d.stop();
    expect(await stateOf(driver.store, guid)).toBe(TaskState.COMPLETED);
    await waitFor("the connection to close", () => cb.callsFor(guid)[0]!.closedAt !== undefined || undefined);
  });

  it("on start it calls back tasks that completed while no dispatcher ran", async () => {
    const cb = await server(() => 200);
    const guids = ["before-1", "before-2", "before-3"];
    for (const g of guids) await completeTask(driver.store, taskRequest(g, { completionCallbackUrl: cb.url(g) }));
    await sleep(200);
    expect(cb.received.filter((c) => guids.includes(c.guid))).toHaveLength(0);
    await dispatcher({});
    for (const g of guids) await waitFor(`removal of ${g}`, gone(g));
    expect(cb.received.map((c) => c.guid).filter((g) => guids.includes(g)).sort()).toEqual(guids);
  });

  it("leaves tasks without a callback URL alone", async () => {
    await dispatcher({ completedTtlMs: 1000 });
    const guid = "no-callback";
    await completeTask(driver.store, taskRequest(guid));
    await sleep(1500);
    expect(await stateOf(driver.store, guid)).toBe(TaskState.COMPLETED);
  });
});
