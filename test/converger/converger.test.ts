import { create } from "@bufbuild/protobuf";
import type { Msg } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startConverger, type Converger, type ConvergerOptions } from "../../src/converger/index.js";
import { CellPresenceSchema } from "../../src/gen/diego/v1/cell_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { openCellsBucket, subjects } from "../../src/nats/index.js";
import { createCellRegistry, nowNanos, transitions, type CellRegistry } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { completeTask, openDriver, sleep, stateOf, taskRequest, waitFor, type TaskDriver } from "../dispatcher/task-driver.js";

// One nats-server for the file: bucket TTLs are fixed by whoever creates the bucket first, so
// every converger here uses the same cell and lock TTLs.
const CELL_TTL = 1500;
const LOCK_TTL = 1500;

let nats: TestNats;
let driver: TaskDriver;
let registry: CellRegistry;
let driverCell: { stop(): void };
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  nats = await startNats();
  driver = await openDriver(nats.url);
  registry = await createCellRegistry(await openCellsBucket(driver.nc, CELL_TTL), CELL_TTL);
  // completeTask() runs tasks on this cell; it must look alive or the converger unclaims them.
  driverCell = liveCell("test-cell", "session-1", false);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  driverCell.stop();
  registry.stop();
  await driver.close();
  await nats.dispose();
});

const LONG = 60_000;

async function converger(opts: Partial<ConvergerOptions>): Promise<Converger> {
  const c = await startConverger({
    natsUrl: nats.url,
    convergeIntervalMs: 200,
    kickIntervalMs: LONG,
    pendingTimeoutMs: LONG,
    claimTimeoutMs: LONG,
    completedTtlMs: LONG,
    retryIntervalMs: LONG,
    lockTtlMs: LOCK_TTL,
    cellTtlMs: CELL_TTL,
    ...opts,
  });
  cleanups.push(() => c.stop());
  return c;
}

/** A cell that heartbeats until stopped (then its presence simply ages out). */
function liveCell(cellId: string, sessionId: string, untilTestEnds = true): { stop(): void } {
  const beat = (): Promise<void> =>
    registry.announce(create(CellPresenceSchema, { cellId, sessionId, stacks: ["lucid64"], heartbeatAt: nowNanos() }));
  void beat();
  const timer = setInterval(() => void beat(), CELL_TTL / 5);
  const stop = (): void => clearInterval(timer);
  if (untilTestEnds) cleanups.push(stop);
  return { stop };
}

function listen(subject: string): string[] {
  const got: string[] = [];
  const sub = driver.nc.subscribe(subject, { callback: (_e: Error | null, m: Msg) => void got.push(m.string()) });
  cleanups.push(() => sub.unsubscribe());
  return got;
}

const task = async (guid: string) => (await driver.store.get(guid))?.record.task;
const msOf = (nanos: bigint): number => Number(nanos / 1_000_000n);

async function claimOn(guid: string, cellId: string, sessionId: string, run = false): Promise<void> {
  await driver.store.create(taskRequest(guid));
  await driver.store.apply(guid, transitions.claim(cellId, sessionId));
  if (run) await driver.store.apply(guid, transitions.start(cellId));
}

describe("converger", () => {
  it("fails a task PENDING longer than the pending timeout", async () => {
    await converger({ pendingTimeoutMs: 1000 });
    const { record } = await driver.store.create(taskRequest("pending-timeout"));
    const t = await waitFor("failure", async () => ((await task("pending-timeout"))?.state === TaskState.COMPLETED ? task("pending-timeout") : undefined), 5000);
    expect(t).toMatchObject({ failed: true, failureReason: "not started within time limit", result: "" });
    const after = (await driver.store.get("pending-timeout"))!.record;
    const waited = msOf(after.firstCompletedAt - record.task!.createdAt);
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(2000);
  });

  it("kicks a PENDING task untouched for the kick interval (re-auction)", async () => {
    const kicks = listen(subjects.auctionKick);
    await converger({ kickIntervalMs: 500 });
    const { record } = await driver.store.create(taskRequest("pending-kick"));
    await waitFor("a kick", () => kicks.includes("pending-kick") || undefined, 3000);
    const now = (await driver.store.get("pending-kick"))!.record;
    expect(now.task!.state).toBe(TaskState.PENDING);
    expect(msOf(now.updatedAt - record.updatedAt)).toBeGreaterThanOrEqual(500);
  });

  it("fails a task CLAIMED longer than the claim timeout on a live cell", async () => {
    liveCell("cell-claim-timeout", "s1");
    await converger({ claimTimeoutMs: 1000 });
    await claimOn("claim-timeout", "cell-claim-timeout", "s1");
    await sleep(500);
    expect(await stateOf(driver.store, "claim-timeout")).toBe(TaskState.CLAIMED);
    const t = await waitFor("failure", async () => ((await task("claim-timeout"))?.state === TaskState.COMPLETED ? task("claim-timeout") : undefined), 5000);
    expect(t).toMatchObject({ failed: true, failureReason: "not claimed within time limit", cellId: "" });
  });

  it("puts a task CLAIMED on a vanished cell back to PENDING for another auction", async () => {
    const kicks = listen(subjects.auctionKick);
    await converger({});
    await claimOn("claimed-on-ghost", "ghost-cell", "s1");
    const t = await waitFor("unclaim", async () => ((await task("claimed-on-ghost"))?.state === TaskState.PENDING ? task("claimed-on-ghost") : undefined), 3000);
    expect(t).toMatchObject({ cellId: "", failed: false });
    await waitFor("auction kick", () => kicks.includes("claimed-on-ghost") || undefined, 2000);
  });

  it("treats a restarted cell (new session) as gone for claims of the old session", async () => {
    liveCell("cell-restarted", "new-session");
    await converger({});
    await claimOn("claimed-old-session", "cell-restarted", "old-session");
    await claimOn("claimed-this-session", "cell-restarted", "new-session");
    await waitFor("unclaim", async () => (await stateOf(driver.store, "claimed-old-session")) === TaskState.PENDING, 3000);
    expect(await stateOf(driver.store, "claimed-this-session")).toBe(TaskState.CLAIMED);
  });

  it("fails a RUNNING task whose cell stops heartbeating, right when the cell expires; never re-runs it", async () => {
    const cell = liveCell("cell-dies", "s1");
    liveCell("cell-lives", "s1");
    // A long interval: only the cell-loss trigger can act in time.
    await converger({ convergeIntervalMs: 20_000 });
    await claimOn("running-on-dying", "cell-dies", "s1", true);
    await claimOn("running-on-living", "cell-lives", "s1", true);
    await sleep(300);
    cell.stop();
    const stoppedAt = Date.now();
    const t = await waitFor(
      "failure",
      async () => ((await task("running-on-dying"))?.state === TaskState.COMPLETED ? task("running-on-dying") : undefined),
      CELL_TTL + 3000,
    );
    expect(Date.now() - stoppedAt).toBeLessThan(CELL_TTL + 1500);
    expect(t).toMatchObject({ failed: true, failureReason: "cell disappeared before completion", cellId: "" });
    expect(await stateOf(driver.store, "running-on-living")).toBe(TaskState.RUNNING);
  });

  it("fails a RUNNING task its live cell says it does not hold (task container does not exist); leaves held ones alone", async () => {
    liveCell("cell-forgetful", "s1");
    // The cell answers the converger's question as a cell-agent does: only this task is held.
    const sub = driver.nc.subscribe(subjects.cellHeld("cell-forgetful"), {
      callback: (_e: Error | null, m: Msg) => void m.respond(JSON.stringify({ session_id: "s1", held: ["held-by-cell"] })),
    });
    cleanups.push(() => sub.unsubscribe());
    await claimOn("held-by-cell", "cell-forgetful", "s1", true);
    await claimOn("forgotten-by-cell", "cell-forgetful", "s1", true);
    await converger({ confirmHeldAfterMs: 500 });
    const t = await waitFor(
      "failure",
      async () => ((await task("forgotten-by-cell"))?.state === TaskState.COMPLETED ? task("forgotten-by-cell") : undefined),
      CELL_TTL + 5000,
    );
    expect(t).toMatchObject({ failed: true, failureReason: "task container does not exist", cellId: "" });
    expect(await stateOf(driver.store, "held-by-cell")).toBe(TaskState.RUNNING);
  });

  it("removes completed tasks nobody resolves after the completed TTL", async () => {
    await converger({ completedTtlMs: 1000 });
    const done = await completeTask(driver.store, taskRequest("reap-me"));
    await sleep(500);
    expect(await stateOf(driver.store, "reap-me")).toBe(TaskState.COMPLETED);
    await waitFor("reaping", async () => (await driver.store.get("reap-me")) === undefined, 3000);
    const waited = Date.now() - msOf(done.record.firstCompletedAt);
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(2000);
  });

  it("hands a stuck RESOLVING task back after the kick interval, and removes it at the TTL", async () => {
    await converger({ kickIntervalMs: 500, completedTtlMs: 2500 });
    await completeTask(driver.store, taskRequest("stuck-resolving"));
    await driver.store.apply("stuck-resolving", transitions.startResolving);
    await waitFor("hand-back", async () => (await stateOf(driver.store, "stuck-resolving")) === TaskState.COMPLETED, 3000);
    await driver.store.apply("stuck-resolving", transitions.startResolving);
    await waitFor("removal", async () => (await driver.store.get("stuck-resolving")) === undefined, 4000);
  });

  it("nudges dispatchers about a COMPLETED callback task untouched for the retry interval", async () => {
    const kicks = listen(subjects.dispatchKick);
    await converger({ retryIntervalMs: 500 });
    await completeTask(driver.store, taskRequest("needs-callback", { completionCallbackUrl: "http://127.0.0.1:9/cb" }));
    await completeTask(driver.store, taskRequest("no-callback-url"));
    await waitFor("dispatch kick", () => kicks.includes("needs-callback") || undefined, 3000);
    expect(kicks).not.toContain("no-callback-url");
  });
});
