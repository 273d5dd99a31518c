import { mkdtemp, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuctioneer, type Auctioneer } from "../../src/auction/index.js";
import { startConverger, type Converger } from "../../src/converger/index.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import type { TaskIndex } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { removeDataDir } from "../fixtures/data-dir.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import {
  cellLayout,
  cleanupCell,
  createProcessSet,
  isDead,
  leftovers,
  openObserver,
  processAlive,
  ociList,
  sleep,
  until,
  type Observer,
  type StartCounter,
} from "./fault-support.js";

// kill -9 of a cell process with running tasks: the converger fails each task once the cell's
// heartbeat expires, nothing ever runs them again (a second cell is up and idle the whole time),
// and the next start of a cell with the same --data-dir/--cell-id removes what the dead one left.

const CELL_TTL_MS = 2_000;
const CONVERGE_INTERVAL_MS = 500;
const KICK_INTERVAL_MS = 1_000;
const LOG_GUID = "cell-kill-logs";
const silent = pino({ level: "silent" });

let nats: TestNats;
let dataDir: string;
let receptorUrl: string;
let stopReceptor: () => Promise<void>;
let auctioneer: Auctioneer;
let converger: Converger;
let nc: NatsConnection;
let index: TaskIndex;
let starts: StartCounter;
let observer: Observer;
const procs = createProcessSet();
/** guid -> every cell id the task was ever CLAIMED/RUNNING on. */
const cellsSeen = new Map<string, Set<string>>();

const cellArgs = (cellId: string): string[] => [
  "cell",
  "--nats", nats.url,
  "--cell-id", cellId,
  "--data-dir", dataDir,
  "--cell-ttl", `${CELL_TTL_MS}ms`,
  "--memory-mb", "2048",
  "--disk-mb", "8192",
  "--containers", "16",
];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-fault-cell-"));
  nats = await startNats();
  const receptor = await startTestReceptor(nats.url, { cellTtlMs: CELL_TTL_MS });
  receptorUrl = receptor.url;
  stopReceptor = receptor.stop;
  auctioneer = await startAuctioneer({
    natsUrl: nats.url,
    logger: silent,
    cellTtlMs: CELL_TTL_MS,
    lockTtlMs: 1_500,
    maxPlacementAttempts: 3,
    retryDelayMs: 300,
    bidTimeoutMs: 500,
  });
  converger = await startConverger({
    natsUrl: nats.url,
    convergeIntervalMs: CONVERGE_INTERVAL_MS,
    kickIntervalMs: KICK_INTERVAL_MS,
    pendingTimeoutMs: 60_000,
    claimTimeoutMs: 30_000,
    completedTtlMs: 600_000,
    retryIntervalMs: 1_000,
    lockTtlMs: 1_500,
    cellTtlMs: CELL_TTL_MS,
  });
  observer = await openObserver(nats.url, "cell-kill-test", LOG_GUID);
  ({ nc, index, starts } = observer);
  index.subscribe((guid, _before, after) => {
    const t = after?.record.task;
    if (t?.cellId) cellsSeen.set(guid, (cellsSeen.get(guid) ?? new Set()).add(t.cellId));
  });
}, 90_000);

afterAll(async () => {
  await procs.killAll();
  for (const id of ["kill-a", "kill-b"]) await cleanupCell(cellLayout(dataDir, id)).catch(() => undefined);
  await observer?.close();
  await converger?.stop();
  await auctioneer?.stop();
  await stopReceptor?.();
  await nats?.dispose();
  if (dataDir) await removeDataDir(dataDir);
}, 60_000);

const task = (guid: string) => index.get(guid)?.record.task;

async function createTask(guid: string, script: string): Promise<void> {
  const res = await fetch(`${receptorUrl}/v1/tasks`, {
    method: "POST",
    body: JSON.stringify({
      task_guid: guid,
      domain: "faults",
      stack: "lucid64",
      memory_mb: 16,
      log_guid: LOG_GUID,
      env: [{ name: "GUID", value: guid }],
      action: { run: { path: "/bin/sh", args: ["-c", script] } },
    }),
  });
  expect(res.status, await res.text()).toBe(201);
}

describe("a cell killed with SIGKILL while running tasks", () => {
  it("fails each task within the heartbeat window, never runs it again, and a restarted cell removes its containers", async () => {
    const layoutA = cellLayout(dataDir, "kill-a");
    const cellA = await procs.spawn(cellArgs("kill-a"));
    const guids = ["doomed-1", "doomed-2", "doomed-3", "doomed-4", "doomed-5"];
    for (const g of guids) await createTask(g, "echo started $GUID; exec sleep 60");
    await until(
      "every task RUNNING on kill-a with its start line received",
      () => guids.every((g) => task(g)?.state === TaskState.RUNNING && task(g)?.cellId === "kill-a" && starts.counts.get(g) === 1),
      30_000,
    );

    // The second cell is up (and able to take the tasks) from before the kill to the end.
    const cellB = await procs.spawn(cellArgs("kill-b"));
    const listed = await ociList(layoutA);
    expect(listed.map((c) => c.id).sort()).toEqual([...guids].sort());
    const initPids = listed.map((c) => c.pid);
    expect(initPids.every(processAlive)).toBe(true);

    const killedAt = Date.now();
    await cellA.kill("SIGKILL");
    const failedAfter = new Map<string, number>();
    await until(
      "every task COMPLETED",
      () => {
        for (const g of guids) if (!failedAfter.has(g) && task(g)?.state === TaskState.COMPLETED) failedAfter.set(g, Date.now() - killedAt);
        return failedAfter.size === guids.length;
      },
      CELL_TTL_MS + 5_000,
      10,
    );
    for (const g of guids) {
      expect(task(g)).toMatchObject({ failed: true, failureReason: "cell disappeared before completion", result: "" });
      // Heartbeats stop at the kill; the presence expires within the TTL, then one check and pass.
      expect(failedAfter.get(g)!).toBeLessThan(CELL_TTL_MS + CONVERGE_INTERVAL_MS + 1_500);
    }
    console.log(`cell kill: tasks failed ${[...failedAfter.values()].sort((a, b) => a - b).join(", ")} ms after SIGKILL (cell TTL ${CELL_TTL_MS} ms)`);

    // Several kick intervals and passes later, nothing was started again anywhere.
    await sleep(3 * KICK_INTERVAL_MS + 2 * CONVERGE_INTERVAL_MS);
    for (const g of guids) {
      expect(task(g)?.state).toBe(TaskState.COMPLETED);
      expect(starts.counts.get(g), g).toBe(1);
      expect([...(cellsSeen.get(g) ?? [])]).toEqual(["kill-a"]);
    }
    expect(await ociList(cellLayout(dataDir, "kill-b"))).toEqual([]);

    // The second cell did run work all along: a new task lands there and starts once.
    await createTask("after-kill", "echo started $GUID");
    await until("after-kill COMPLETED", () => task("after-kill")?.state === TaskState.COMPLETED, 20_000);
    expect(task("after-kill")).toMatchObject({ failed: false, cellId: "" });
    expect([...cellsSeen.get("after-kill")!]).toEqual(["kill-b"]);
    await until("after-kill's start line", () => starts.counts.get("after-kill") === 1, 5_000);
    expect(isDead(cellB)).toBe(false);

    // The dead cell's containers outlive it: nobody was left to remove them.
    const left = await leftovers(layoutA);
    expect(left.containers.sort()).toEqual([...guids].sort());
    expect(left.mounts.length).toBeGreaterThanOrEqual(guids.length);
    expect(left.cgroups.length).toBeGreaterThan(0);
    expect(initPids.every(processAlive)).toBe(true);

    // Only root passes into the cells' dirs (no search bit for other host users).
    expect((await stat(path.join(dataDir, "cells"))).mode & 0o777).toBe(0o700);

    // A cell started again with the same --data-dir and --cell-id removes them before it is ready.
    const restarted = await procs.spawn(cellArgs("kill-a"));
    expect(await leftovers(layoutA)).toEqual({ containers: [], mounts: [], cgroups: [] });
    await until("the old containers' processes to be gone", () => !initPids.some(processAlive), 5_000);
    await restarted.kill("SIGTERM");
    expect(restarted.child.exitCode).toBe(0);
    expect(await leftovers(layoutA)).toEqual({ containers: [], mounts: [], cgroups: [] });
    for (const g of guids) expect(starts.counts.get(g)).toBe(1);
  }, 120_000);
});
