import { expect, it } from "vitest";
import { startConverger } from "../../src/converger/index.js";
import { startDispatcher } from "../../src/dispatcher/index.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { startCallbackServer } from "./callback-server.js";
import { completeTask, sleep, stateOf, taskRequest, waitFor, useDriver } from "./task-driver.js";

const env = useDriver();

it("a dispatcher killed mid-callback: the converger hands the task back and another dispatcher delivers it", async () => {
  let first: DiegoProcess | undefined;
  const cb = await startCallbackServer((c) => {
    if (c.nth > 1) return 200;
    // Kill the dispatcher while it waits for our answer.
    void first?.kill("SIGKILL");
    return "hang";
  });
  const guid = "crash-mid-callback";
  const cleanups: Array<() => Promise<unknown>> = [() => cb.close()];
  try {
    first = await spawnDiego([
      "dispatcher",
      "--nats", env.nats.url,
      "--callback-timeout", "30s",
      "--callback-retry-interval", "500ms",
      "--completed-ttl", "1m",
    ]);
    cleanups.push(() => first!.kill("SIGKILL"));
    expect(first.readyLine).toContain("ready");

    await completeTask(env.driver.store, taskRequest(guid, { completionCallbackUrl: cb.url(guid) }));
    await waitFor("the first call", () => cb.callsFor(guid).length === 1 || undefined);
    await waitFor("the first dispatcher to die", () => first!.child.exitCode !== null || first!.child.signalCode !== null || undefined);
    expect(first.child.signalCode).toBe("SIGKILL");

    // Nobody is left to finish the round: the task stays RESOLVING.
    const second = await startDispatcher({ natsUrl: env.nats.url, callbackTimeoutMs: 2000, retryIntervalMs: 500, completedTtlMs: 60_000 });
    cleanups.push(() => second.stop());
    await sleep(800);
    expect(await stateOf(env.driver.store, guid)).toBe(TaskState.RESOLVING);
    expect(cb.callsFor(guid)).toHaveLength(1);

    const converger = await startConverger({
      natsUrl: env.nats.url,
      convergeIntervalMs: 200,
      kickIntervalMs: 1000,
      retryIntervalMs: 500,
      completedTtlMs: 60_000,
      lockTtlMs: 1500,
    });
    cleanups.push(() => converger.stop());

    await waitFor("delivery by the second dispatcher", async () => (await env.driver.store.get(guid)) === undefined, 10_000);
    const calls = cb.callsFor(guid);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.body).toMatchObject({ task_guid: guid, state: "COMPLETED", failed: true });
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
});
