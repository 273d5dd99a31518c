import { expect, it } from "vitest";
import { startConverger } from "../../src/converger/index.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { openLocksBucket } from "../../src/nats/index.js";
import { spawnDiego } from "../fixtures/receptor.js";
import { sleep, stateOf, taskRequest, waitFor, useDriver } from "../dispatcher/task-driver.js";

const env = useDriver();

it("two convergers: only the lock holder acts; when it is killed the standby takes over", async () => {
  const LOCK_TTL = 1500;
  const leader = await spawnDiego([
    "converger",
    "--nats", env.nats.url,
    "--lock-ttl", `${LOCK_TTL}ms`,
    "--converge-interval", "200ms",
    "--pending-timeout", "1s",
    "--cell-ttl", "2s",
  ]);
  const standby = await startConverger({
    natsUrl: env.nats.url,
    holderId: "standby",
    lockTtlMs: LOCK_TTL,
    convergeIntervalMs: 200,
    pendingTimeoutMs: 1000,
    cellTtlMs: 2000,
  });
  try {
    const locks = await openLocksBucket(env.driver.nc, LOCK_TTL);
    const holder = async (): Promise<string | undefined> => (await locks.get("converger"))?.string();
    // The lock holder is the spawned process (its holder id carries its pid).
    expect(await waitFor("a lock holder", holder)).toContain(`-${leader.child.pid}-`);

    // The leader fails a timed-out PENDING task; the standby never runs a pass.
    await env.driver.store.create(taskRequest("timeout-under-first-leader"));
    await waitFor("failure by the leader", async () => (await stateOf(env.driver.store, "timeout-under-first-leader")) === TaskState.COMPLETED, 5000);
    expect(standby.isLeader()).toBe(false);
    expect(standby.passes()).toBe(0);

    // Kill -9: no hand-over, the lock must expire first.
    await env.driver.store.create(taskRequest("timeout-under-second-leader"));
    await leader.kill("SIGKILL");
    const killedAt = Date.now();
    await waitFor("the standby to lead", () => standby.isLeader() || undefined, LOCK_TTL * 3);
    expect(Date.now() - killedAt).toBeLessThan(LOCK_TTL + 1500);
    expect(await holder()).toBe("standby");
    await waitFor("failure by the new leader", async () => (await stateOf(env.driver.store, "timeout-under-second-leader")) === TaskState.COMPLETED, 5000);
    const failed = (await env.driver.store.get("timeout-under-second-leader"))!.record.task!;
    expect(failed.failureReason).toBe("not started within time limit");
    expect(standby.passes()).toBeGreaterThan(0);
  } finally {
    await leader.kill("SIGKILL");
    await standby.stop();
  }
});

it("a converger stopped gracefully hands the lock over at once", async () => {
  const common = { natsUrl: env.nats.url, lockTtlMs: 1500, convergeIntervalMs: 200, cellTtlMs: 2000 };
  const first = await startConverger({ ...common, holderId: "first" });
  await waitFor("first leads", () => first.isLeader() || undefined);
  const second = await startConverger({ ...common, holderId: "second" });
  try {
    await sleep(600);
    expect(second.isLeader()).toBe(false);
    await first.stop();
    const stoppedAt = Date.now();
    await waitFor("second leads", () => second.isLeader() || undefined, 3000);
    // The next refresh (a third of the TTL), not the TTL.
    expect(Date.now() - stoppedAt).toBeLessThan(1000);
  } finally {
    await first.stop();
    await second.stop();
  }
});
