import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCellAgent, type CellAgent } from "../../cell-agent/src/index.js";
import { startConverger, type Converger } from "../../src/converger/index.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { openLocksBucket } from "../../src/nats/index.js";
import type { TaskIndex } from "../../src/store/index.js";
import type { DiegoProcess } from "../fixtures/receptor.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import {
  cellLayout,
  cleanupCell,
  createProcessSet,
  isDead,
  openObserver,
  until,
  type Observer,
  type StartCounter,
} from "./fault-support.js";

// Two `diego auctioneer` processes; the active one (the leader lock's holder) is killed with
// SIGKILL. The standby takes the lock once it expires and places the tasks left PENDING.

const CELL_TTL_MS = 2_000;
const LOCK_TTL_MS = 1_500;
const LOG_GUID = "auctioneer-kill-logs";
const silent = pino({ level: "silent" });

let nats: TestNats;
let dataDir: string;
let receptorUrl: string;
let stopReceptor: () => Promise<void>;
let converger: Converger;
let cell: CellAgent;
let nc: NatsConnection;
let index: TaskIndex;
let locks: KV;
let starts: StartCounter;
let observer: Observer;
const procs = createProcessSet();

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-fault-auction-"));
  nats = await startNats();
  // The first opener fixes the bucket TTLs: every process here uses the same ones.
  converger = await startConverger({
    natsUrl: nats.url,
    convergeIntervalMs: 500,
    kickIntervalMs: 1_000,
    pendingTimeoutMs: 60_000,
    claimTimeoutMs: 30_000,
    completedTtlMs: 600_000,
    lockTtlMs: LOCK_TTL_MS,
    cellTtlMs: CELL_TTL_MS,
  });
  const receptor = await startTestReceptor(nats.url, { cellTtlMs: CELL_TTL_MS });
  receptorUrl = receptor.url;
  stopReceptor = receptor.stop;
  cell = await startCellAgent({
    natsUrl: nats.url,
    cellId: "auction-kill-cell",
    stacks: ["lucid64"],
    rootfs: new Map(),
    workDir: path.join(dataDir, "cells", "auction-kill-cell"),
    runtime: "runc",
    memoryMb: 2048,
    diskMb: 8192,
    containers: 16,
    zone: "z1",
    cellTtlMs: CELL_TTL_MS,
    pidsLimit: 256,
    dockerRegistry: "127.0.0.1:1",
    logger: silent,
  });
  observer = await openObserver(nats.url, "auctioneer-kill-test", LOG_GUID);
  ({ nc, index, starts } = observer);
  locks = await openLocksBucket(nc, LOCK_TTL_MS);
}, 60_000);

afterAll(async () => {
  await procs.killAll();
  await cell?.stop().catch(() => undefined);
  if (dataDir) await cleanupCell(cellLayout(dataDir, "auction-kill-cell")).catch(() => undefined);
  await observer?.close();
  await converger?.stop();
  await stopReceptor?.();
  await nats?.dispose();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

const task = (guid: string) => index.get(guid)?.record.task;

async function createTasks(guids: string[]): Promise<void> {
  for (const guid of guids) {
    const res = await fetch(`${receptorUrl}/v1/tasks`, {
      method: "POST",
      body: JSON.stringify({
        task_guid: guid,
        domain: "faults",
        stack: "lucid64",
        memory_mb: 16,
        log_guid: LOG_GUID,
        env: [{ name: "GUID", value: guid }],
        action: { run: { path: "/bin/sh", args: ["-c", "echo started $GUID"] } },
      }),
    });
    expect(res.status, await res.text()).toBe(201);
  }
}

async function lockHolder(): Promise<string | undefined> {
  const e = await locks.get("auctioneer");
  return e && e.operation === "PUT" && e.length > 0 ? e.string() : undefined;
}

const becameLeader = (p: DiegoProcess): boolean => /"msg":"became leader"/.test(p.stderr());

describe("the active auctioneer killed with SIGKILL", () => {
  it("the standby takes the lock and places the tasks left pending; each runs once", async () => {
    const args = ["auctioneer", "--nats", nats.url, "--lock-ttl", `${LOCK_TTL_MS}ms`, "--cell-ttl", `${CELL_TTL_MS}ms`];
    // At info level each auctioneer logs when it becomes the leader: that names the active one.
    const auctioneers = [await procs.spawn(args, { DIEGO_LOG_LEVEL: "info" }), await procs.spawn(args, { DIEGO_LOG_LEVEL: "info" })];
    await until("one auctioneer to lead", () => auctioneers.some(becameLeader), 20_000);
    const holderBefore = await lockHolder();
    expect(holderBefore).toBeTruthy();
    const active = auctioneers.find(becameLeader)!;
    const standby = auctioneers.find((a) => a !== active)!;
    expect(becameLeader(standby)).toBe(false);

    const before = ["before-kill-1", "before-kill-2"];
    await createTasks(before);
    await until("tasks placed by the active auctioneer", () => before.every((g) => task(g)?.state === TaskState.COMPLETED), 20_000);

    await active.kill("SIGKILL");
    const killedAt = Date.now();
    const pending = Array.from({ length: 10 }, (_, i) => `after-kill-${i}`);
    await createTasks(pending);
    const claimedAfter = new Map<string, number>();
    const off = index.subscribe((guid, _b, after) => {
      if (after?.record.task?.cellId && !claimedAfter.has(guid)) claimedAfter.set(guid, Date.now() - killedAt);
    });
    try {
      await until("every pending task COMPLETED", () => pending.every((g) => task(g)?.state === TaskState.COMPLETED), 30_000);
    } finally {
      off();
    }

    for (const g of pending) {
      expect(task(g), g).toMatchObject({ failed: false, failureReason: "" });
    }
    await until("every start line", () => pending.every((g) => starts.counts.has(g)), 5_000);
    for (const g of [...before, ...pending]) expect(starts.counts.get(g), g).toBe(1);

    expect(isDead(active)).toBe(true);
    expect(becameLeader(standby)).toBe(true);
    const holderAfter = await lockHolder();
    expect(holderAfter).toBeTruthy();
    expect(holderAfter).not.toBe(holderBefore);
    const firstPlacement = Math.min(...claimedAfter.values());
    // The dead holder's lock expires within its TTL; the standby tries every third of it.
    expect(firstPlacement).toBeLessThan(LOCK_TTL_MS + LOCK_TTL_MS / 3 + 1_500);
    console.log(`auctioneer kill: first placement ${firstPlacement} ms after SIGKILL (lock TTL ${LOCK_TTL_MS} ms)`);
  }, 90_000);
});
