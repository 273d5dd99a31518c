import { expect, it } from "vitest";
import { startDispatcher } from "../../src/dispatcher/index.js";
import { startCallbackServer } from "./callback-server.js";
import { completeTask, sleep, taskRequest, waitFor, useDriver } from "./task-driver.js";

const env = useDriver();

it("two dispatchers, 500 completed tasks: every callback URL gets its first call exactly once", async () => {
  const cb = await startCallbackServer(() => 200);
  const options = { natsUrl: env.nats.url, callbackTimeoutMs: 5000, retryIntervalMs: 30_000, completedTtlMs: 120_000, concurrency: 50 };
  const [a, b] = await Promise.all([startDispatcher(options), startDispatcher(options)]);
  try {
    const guids = Array.from({ length: 500 }, (_, i) => `race-${i}`);
    // Complete them while both dispatchers watch, in parallel batches so both see bursts.
    for (let i = 0; i < guids.length; i += 50) {
      await Promise.all(
        guids.slice(i, i + 50).map((g) => completeTask(env.driver.store, taskRequest(g, { completionCallbackUrl: cb.url(g) }))),
      );
    }
    await waitFor("a call per task", () => new Set(cb.received.map((c) => c.guid)).size === 500 || undefined, 20_000);
    await waitFor("all 500 tasks resolved", async () => {
      const left = await Promise.all(guids.map((g) => env.driver.store.get(g)));
      return left.every((t) => t === undefined) || undefined;
    }, 10_000, 100);
    await sleep(300);
    const perGuid = new Map<string, number>();
    for (const c of cb.received) perGuid.set(c.guid, (perGuid.get(c.guid) ?? 0) + 1);
    expect(perGuid.size).toBe(500);
    expect([...perGuid.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await cb.close();
  }
});
