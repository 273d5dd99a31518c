import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { connectNats, openCellsBucket, openLocksBucket, openTasksBucket } from "../../src/nats/index.js";
import { createTaskIndex, type TaskIndex } from "../../src/store/index.js";
import { cellLayout, cleanupCell, createProcessSet, sleep, until } from "../faults/fault-support.js";
import { startNatsCluster, type NatsCluster } from "../fixtures/nats-cluster.js";
import { freePort } from "../fixtures/ports.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { removeDataDir } from "../fixtures/data-dir.js";

// A 3-node JetStream cluster with every bucket on 3 replicas (made with 1, then raised by the
// processes' --replicas 3). The node that leads the tasks
// stream is SIGKILLed while tasks run and creates keep coming: no acknowledged create is lost,
// no task is stuck or failed, creates succeed again within 10 s, and the receptor, auctioneer and
// converger (whose watches may have been served by the dead node) all catch up.

const CELL_TTL = "3s";
const CELL_ID = "cluster-cell";
const CREATE_EVERY_MS = 100;

let cluster: NatsCluster;
let dataDir: string;
let receptor: string;
let nc: NatsConnection;
let index: TaskIndex;
const procs = createProcessSet();

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-cluster-test-"));
  // Buckets made earlier with one replica (as by a `diego up` era fleet): --replicas 3 must
  // bring them to three.
  nc = await connectNats({ url: cluster.urls, name: "cluster-observer" });
  await openTasksBucket(nc);
  await openCellsBucket(nc, 3_000);
  await openLocksBucket(nc, 3_000);
  const nats = ["--nats", cluster.urls, "--replicas", "3", "--cell-ttl", CELL_TTL];
  const port = await freePort();
  receptor = `http://127.0.0.1:${port}`;
  // The converger first: it makes the buckets (R3) while the cluster elects its leaders.
  await procs.spawn(["converger", ...nats, "--lock-ttl", "3s", "--converge-interval", "1s", "--kick-interval", "3s"]);
  await Promise.all([
    procs.spawn(["auctioneer", ...nats, "--lock-ttl", "3s", "--placement-retries", "100"]),
    procs.spawn(["receptor", ...nats, "--listen", `127.0.0.1:${port}`]),
    procs.spawn(["cell", ...nats, "--cell-id", CELL_ID, "--data-dir", dataDir, "--memory-mb", "4096", "--disk-mb", "16384", "--containers", "32"]),
  ]);
  index = await createTaskIndex(await openTasksBucket(nc), undefined, { nc });
  await index.ready();
}, 240_000);

afterAll(async () => {
  await procs.killAll();
  await cleanupCell(cellLayout(dataDir, CELL_ID)).catch(() => undefined);
  await index?.stop();
  await nc?.close().catch(() => undefined);
  await cluster?.dispose();
  if (dataDir) await removeDataDir(dataDir);
}, 60_000);

async function create(guid: string): Promise<boolean> {
  try {
    const res = await fetch(`${receptor}/v1/tasks`, {
      method: "POST",
      body: JSON.stringify({
        task_guid: guid,
        domain: "cluster",
        stack: "lucid64",
        memory_mb: 16,
        action: { run: { path: "/bin/sh", args: ["-c", "sleep 1"] } },
      }),
      signal: AbortSignal.timeout(8_000),
    });
    await res.body?.cancel();
    return res.status === 201;
  } catch {
    return false;
  }
}

describe("a 3-node NATS cluster with --replicas 3", () => {
  it("loses the node leading the tasks stream: no acknowledged create lost, none stuck, creates back within 10 s, views catch up", async () => {
    const jsm = await jetstreamManager(nc);
    for (const bucket of ["diego_tasks", "diego_cells", "diego_locks"]) {
      expect((await jsm.streams.info(`KV_${bucket}`)).config.num_replicas, bucket).toBe(3);
    }

    const acked: string[] = [];
    const attempts: Array<{ at: number; ok: boolean }> = [];
    let stop = false;
    let n = 0;
    const flow = (async () => {
      const inFlight: Array<Promise<void>> = [];
      while (!stop) {
        const guid = `cluster-${n++}`;
        const at = Date.now();
        inFlight.push(
          create(guid).then((ok) => {
            attempts.push({ at, ok });
            if (ok) acked.push(guid);
          }),
        );
        await sleep(CREATE_EVERY_MS);
      }
      await Promise.all(inFlight);
    })();

    await until("tasks running", () => index.list().some((t) => t.state === TaskState.RUNNING), 30_000);
    await sleep(1_000);
    const leader = (await jsm.streams.info("KV_diego_tasks")).cluster?.leader;
    expect(leader).toBeTruthy();
    const killedAt = Date.now();
    await cluster.node(leader!).kill("SIGKILL");
    await sleep(15_000);
    stop = true;
    await flow;

    // Creates came back: the first success among requests sent after the kill.
    const backAt = attempts.filter((a) => a.at >= killedAt && a.ok).map((a) => a.at).sort((a, b) => a - b)[0];
    expect(backAt, "a create succeeded after the node loss").toBeDefined();
    const recoveryMs = backAt! - killedAt;
    expect(recoveryMs).toBeLessThan(10_000);

    // Every acknowledged task completes, none failed (the cell never died).
    const done = (g: string): boolean => index.get(g)?.state === TaskState.COMPLETED;
    await until("every acknowledged task completed", () => acked.every(done), 90_000, 250);
    const failed = acked.filter((g) => index.get(g)?.record.task?.failed).map((g) => `${g}: ${index.get(g)!.record.task!.failureReason}`);
    expect(failed).toEqual([]);

    // The receptor's view caught up: it lists them all completed, and the cell.
    await until(
      "the receptor's list to show every task completed",
      async () => {
        const list = (await (await fetch(`${receptor}/v1/domains/cluster/tasks`)).json()) as Array<{ task_guid: string; state: string }>;
        const states = new Map(list.map((t) => [t.task_guid, t.state]));
        return acked.every((g) => states.get(g) === "COMPLETED");
      },
      20_000,
      250,
    );
    const cells = (await (await fetch(`${receptor}/v1/cells`)).json()) as Array<{ cell_id: string }>;
    expect(cells.map((c) => c.cell_id)).toContain(CELL_ID);

    // The auctioneer's and converger's views: a new task is placed and runs to success.
    expect(await create("cluster-after")).toBe(true);
    await until("the task created after the loss completes", () => done("cluster-after"), 30_000, 100);
    expect(index.get("cluster-after")!.record.task!.failed).toBe(false);
    console.log(`cluster report: ${JSON.stringify({ acked: acked.length, attempts: attempts.length, leader, recoveryMs })}`);
  }, 180_000);
});
