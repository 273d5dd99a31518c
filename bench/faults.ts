// npm run bench:faults — in one run:
//  * a single nats-server SIGKILLed while tasks run and restarted 2 s later: time from the
//    restart until creates succeed again, and until the last task in flight completes;
//  * a 3-node JetStream cluster with --replicas 3 losing the node that leads the tasks stream:
//    the same two times, from the loss;
//  * creates per second into a 3-replica bucket against a 1-replica bucket, on the same cluster
//    (compare-and-swap puts of new task records, as the task store's create sends them).
// Every diego process is a real `diego` child process; the cells run real containers.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { TaskState } from "../src/gen/diego/v1/task_pb.js";
import { connectNats, openTasksBucket } from "../src/nats/index.js";
import { createKvClient, createTaskIndex, encodeRecord, nowNanos, type TaskIndex } from "../src/store/index.js";
import { newTaskRecord } from "../src/store/transitions.js";
import { decodeTaskCreateRequest } from "../src/model/task-json.js";
import { cellLayout, cleanupCell, createProcessSet, sleep, until } from "../test/faults/fault-support.js";
import { startNats } from "../test/fixtures/nats.js";
import { startNatsCluster } from "../test/fixtures/nats-cluster.js";
import { freePort } from "../test/fixtures/ports.js";
import { meterSteal } from "./proc-cpu.js";

const IN_FLIGHT = Number(process.env.BENCH_FAULT_TASKS ?? 20);
const KV_CREATES = Number(process.env.BENCH_KV_CREATES ?? 5_000);
const KV_CONCURRENCY = 50;

interface FaultTimes {
  /** From the fault (restart, node loss) until the first create that succeeded. */
  createsBackMs: number;
  /** From the fault until every task created before it was COMPLETED. */
  lastTaskMs: number;
  failed: number;
}

interface Fleet {
  receptor: string;
  nc: NatsConnection;
  index: TaskIndex;
  stop(): Promise<void>;
}

/** receptor, auctioneer, converger and one cell as processes, and an observer's index. */
async function startFleet(natsUrl: string, extra: string[], name: string): Promise<Fleet> {
  const procs = createProcessSet();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `diego-bench-${name}-`));
  const common = ["--nats", natsUrl, "--cell-ttl", "3s", ...extra];
  const port = await freePort();
  await procs.spawn(["converger", ...common, "--lock-ttl", "3s", "--converge-interval", "1s"]);
  await Promise.all([
    procs.spawn(["auctioneer", ...common, "--lock-ttl", "3s", "--placement-retries", "100"]),
    procs.spawn(["receptor", ...common, "--listen", `127.0.0.1:${port}`]),
    procs.spawn(["cell", ...common, "--cell-id", `bench-${name}`, "--data-dir", dataDir, "--memory-mb", "4096", "--disk-mb", "16384", "--containers", "64"]),
  ]);
  const nc = await connectNats({ url: natsUrl, name: `bench-${name}` });
  const index = await createTaskIndex(await openTasksBucket(nc), undefined, { nc });
  await index.ready();
  return {
    receptor: `http://127.0.0.1:${port}`,
    nc,
    index,
    async stop() {
      await procs.killAll();
      await cleanupCell(cellLayout(dataDir, `bench-${name}`)).catch(() => undefined);
      await index.stop();
      await nc.close().catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function create(fleet: Fleet, guid: string, sleepS: number, timeoutMs = 3_000): Promise<boolean> {
  try {
    const res = await fetch(`${fleet.receptor}/v1/tasks`, {
      method: "POST",
      body: JSON.stringify({ task_guid: guid, domain: "bench", stack: "lucid64", memory_mb: 16, action: { run: { path: "/bin/sleep", args: [String(sleepS)] } } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.status === 201;
  } catch {
    return false;
  }
}

/** Starts IN_FLIGHT tasks, waits until they run, applies the fault, and times the recovery. */
async function measureFault(fleet: Fleet, prefix: string, fault: () => Promise<number>): Promise<FaultTimes> {
  const guids = Array.from({ length: IN_FLIGHT }, (_, i) => `${prefix}-${i}`);
  for (const g of guids) if (!(await create(fleet, g, 3, 10_000))) throw new Error(`could not create ${g}`);
  await until("tasks running", () => guids.filter((g) => fleet.index.get(g)?.state === TaskState.RUNNING).length >= IN_FLIGHT / 2, 60_000);
  // The fault returns when it happened (for a restart: when the server is back).
  let faultAt = 0;
  let backAt = 0;
  let n = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const sent = Date.now();
      const ok = await create(fleet, `${prefix}-probe-${n++}`, 0);
      if (ok && faultAt && sent >= faultAt && !backAt) backAt = Date.now();
      if (!ok) await sleep(50);
      else await sleep(100);
    }
  })();
  faultAt = await fault();
  await until("creates to succeed again", () => backAt > 0, 120_000, 20);
  await until("every task in flight to complete", () => guids.every((g) => fleet.index.get(g)?.state === TaskState.COMPLETED), 180_000, 50);
  const lastAt = Date.now();
  probing = false;
  await probe;
  return {
    createsBackMs: backAt - faultAt,
    lastTaskMs: lastAt - faultAt,
    failed: guids.filter((g) => fleet.index.get(g)?.record.task?.failed).length,
  };
}

async function singleServerRestart(): Promise<FaultTimes & { downMs: number }> {
  let nats = await startNats();
  const fleet = await startFleet(nats.url, [], "single");
  let downMs = 0;
  try {
    const times = await measureFault(fleet, "restart", async () => {
      const killed = Date.now();
      await nats.kill();
      await sleep(2_000);
      nats = await nats.restart();
      downMs = Date.now() - killed;
      return Date.now();
    });
    return { ...times, downMs };
  } finally {
    await fleet.stop();
    await nats.dispose();
  }
}

async function clusterNodeLoss(): Promise<{ times: FaultTimes; leader: string; r1: number; r3: number }> {
  const cluster = await startNatsCluster(3);
  const fleet = await startFleet(cluster.urls, ["--replicas", "3"], "cluster");
  try {
    const jsm = await jetstreamManager(fleet.nc);
    const leader = (await jsm.streams.info("KV_diego_tasks")).cluster!.leader!;
    const times = await measureFault(fleet, "nodeloss", async () => {
      await cluster.node(leader).kill("SIGKILL");
      return Date.now();
    });
    await cluster.node(leader).start();
    await sleep(3_000);
    // Interleaved rounds, each into a fresh bucket: the first round also warms the client up.
    const r1s: number[] = [];
    const r3s: number[] = [];
    for (let round = 0; round < 3; round++) {
      r1s.push(await kvCreateRate(fleet.nc, `bench_r1_${round}`, 1));
      r3s.push(await kvCreateRate(fleet.nc, `bench_r3_${round}`, 3));
    }
    return { times, leader, r1: median(r1s), r3: median(r3s) };
  } finally {
    await fleet.stop();
    await cluster.dispose();
  }
}

/** Creates/s of new task records into a fresh bucket with `replicas` copies. */
async function kvCreateRate(nc: NatsConnection, bucket: string, replicas: number): Promise<number> {
  await new Kvm(jetstream(nc)).create(bucket, { history: 1, storage: "file", replicas });
  const client = createKvClient(nc, bucket, { timeoutMs: 30_000 });
  const req = decodeTaskCreateRequest({ task_guid: "x", domain: "bench", stack: "lucid64", action: { run: { path: "/bin/true" } } });
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: KV_CONCURRENCY }, async () => {
      while (next < KV_CREATES) {
        const i = next++;
        await client.put(`task-${i}`, encodeRecord(newTaskRecord({ ...req, taskGuid: `task-${i}` }, nowNanos())), 0);
      }
    }),
  );
  const rate = KV_CREATES / ((performance.now() - began) / 1000);
  client.close();
  return rate;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const steal = meterSteal();
  const began = Date.now();
  const single = await singleServerRestart();
  const cluster = await clusterNodeLoss();
  const lines = [
    `bench:faults (${new Date().toISOString()}, ${os.cpus().length} cores, ${IN_FLIGHT} tasks in flight, took ${s(Date.now() - began)})`,
    "",
    "| fault | creates succeed again | last in-flight task completes | in-flight tasks failed |",
    "|---|---:|---:|---:|",
    `| nats-server SIGKILLed, restarted after 2 s (down ${s(single.downMs)}; from the restart) | ${s(single.createsBackMs)} | ${s(single.lastTaskMs)} | ${single.failed} |`,
    `| 3-node cluster, --replicas 3, node leading the tasks stream (${cluster.leader}) SIGKILLed (from the loss) | ${s(cluster.times.createsBackMs)} | ${s(cluster.times.lastTaskMs)} | ${cluster.times.failed} |`,
    "",
    `| bucket on the 3-node cluster | creates/s (${KV_CREATES} CAS puts of new task records, concurrency ${KV_CONCURRENCY}; median of 3 interleaved rounds) |`,
    "|---|---:|",
    `| 1 replica | ${Math.round(cluster.r1).toLocaleString("en-US")} |`,
    `| 3 replicas | ${Math.round(cluster.r3).toLocaleString("en-US")} (${(cluster.r3 / cluster.r1).toFixed(2)} × 1 replica) |`,
    "",
    `The hypervisor kept ${(100 * steal.read()).toFixed(0)}% of the CPU time for other guests (steal) during the run.`,
  ];
  console.log(lines.join("\n"));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
