// npm run bench:e2e — in one run:
//  * the bare runtime: median `runc run` of /bin/true on the busybox root filesystem, and the
//    sandbox's overhead per limit (memory+cpu, disk cap, user namespace) against it;
//  * create-to-COMPLETED p50/p99 of 500 /bin/true tasks on one cell (one at a time), and tasks
//    per second on one cell (500 submitted at once);
//  * placements per second of the auctioneer against 1,000 simulated cells;
//  * first-pull vs cached start of a docker image from a local registry;
//  * container networking: p50 create→COMPLETED and tasks/s of /bin/true without a network
//    namespace, with one and no rules, and with one and 10 rules, interleaved rounds in one run
//    (BENCH_ONLY=network runs just these rows).
import os from "node:os";
import { meterSteal } from "./proc-cpu.js";
import { TaskState } from "../src/gen/diego/v1/task_pb.js";
import { startCluster, type TestCluster } from "../test/fixtures/cluster.js";
import { startNats } from "../test/fixtures/nats.js";
import { pushBusyboxImage, startRegistry } from "../test/fixtures/registry.js";
import { benchAuction } from "./auction-bench.js";
import { runRuntimeBench, type BenchRow } from "./runtime-bench.js";

const TASKS = Number(process.env.BENCH_TASKS ?? 500);

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

function completion(cluster: TestCluster, guid: string): Promise<number> {
  return new Promise((resolve) => {
    const off = cluster.index.subscribe((g, _b, after) => {
      if (g === guid && after?.record.task?.state === TaskState.COMPLETED) {
        off();
        resolve(performance.now());
      }
    });
  });
}

async function runTask(
  cluster: TestCluster,
  guid: string,
  extra: Record<string, unknown> = {},
): Promise<{ ms: number; failed: boolean; reason: string }> {
  const done = completion(cluster, guid);
  const start = performance.now();
  const res = await cluster.createTask({ task_guid: guid, domain: "bench", stack: "lucid64", action: { run: { path: "/bin/true" } }, ...extra });
  if (res.status !== 201) throw new Error(`create ${guid}: ${res.status} ${await res.text()}`);
  const end = await done;
  const t = cluster.index.get(guid)?.record.task;
  return { ms: end - start, failed: t?.failed ?? true, reason: t ? t.failureReason : "not in the index" };
}

async function e2eLatency(
  privileged: boolean,
): Promise<{ p50: number; p99: number; failed: number; reasons: string[]; perSecond: number }> {
  const cluster = await startCluster({ cells: [{ cellId: "bench-cell", containers: 256, memoryMb: 16384 }] });
  try {
    for (let i = 0; i < 5; i++) await runTask(cluster, `warm-${privileged}-${i}`, { privileged });
    const lat: number[] = [];
    const failures: string[] = [];
    for (let i = 0; i < TASKS; i++) {
      const r = await runTask(cluster, `lat-${privileged}-${i}`, { privileged });
      lat.push(r.ms);
      if (r.failed) failures.push(r.reason);
    }
    lat.sort((a, b) => a - b);
    const start = performance.now();
    const all = await Promise.all(Array.from({ length: TASKS }, (_, i) => runTask(cluster, `tput-${privileged}-${i}`, { privileged })));
    const perSecond = TASKS / ((performance.now() - start) / 1000);
    failures.push(...all.filter((r) => r.failed).map((r) => r.reason));
    return { p50: pct(lat, 50), p99: pct(lat, 99), failed: failures.length, reasons: [...new Set(failures)], perSecond };
  } finally {
    await cluster.stop();
  }
}

const NET_TASKS = Number(process.env.BENCH_NET_TASKS ?? 150);
const TEN_RULES = Array.from({ length: 10 }, (_, i) =>
  i % 3 === 0
    ? { protocol: "tcp", destinations: [`203.0.113.${i}`, `198.51.100.0/24`], ports: [443, 8443] }
    : i % 3 === 1
      ? { protocol: "udp", destinations: [`203.0.113.${i}-203.0.113.${i + 20}`], port_range: { start: 53, end: 53 } }
      : { protocol: "all", destinations: [`192.0.2.${i}`], log: true },
);

interface NetRow {
  name: string;
  lat: number[];
  perSecond: number[];
  failed: number;
  /** Distinct failure reasons, printed under the table. */
  reasons: Set<string>;
}

/** One round of one networking configuration on a fresh cell: latencies, then tasks/s. */
async function netRound(row: NetRow, network: false | undefined, extra: Record<string, unknown>, round: number): Promise<void> {
  const cluster = await startCluster({ cells: [{ cellId: "net-bench", containers: 256, memoryMb: 16384, network }] });
  try {
    const tag = `${row.name.replace(/[^a-z0-9]/gi, "")}-${round}`;
    for (let i = 0; i < 3; i++) await runTask(cluster, `nwarm-${tag}-${i}`, extra);
    for (let i = 0; i < NET_TASKS; i++) {
      const r = await runTask(cluster, `nlat-${tag}-${i}`, extra);
      row.lat.push(r.ms);
      if (r.failed) {
        row.failed++;
        row.reasons.add(r.reason);
      }
    }
    const start = performance.now();
    const all = await Promise.all(Array.from({ length: NET_TASKS }, (_, i) => runTask(cluster, `ntput-${tag}-${i}`, extra)));
    row.perSecond.push(NET_TASKS / ((performance.now() - start) / 1000));
    for (const r of all.filter((x) => x.failed)) {
      row.failed++;
      row.reasons.add(r.reason);
    }
  } finally {
    await cluster.stop();
  }
}

async function networkRows(log: (line: string) => void): Promise<void> {
  const configs: Array<{ row: NetRow; network: false | undefined; extra: Record<string, unknown> }> = [
    { row: { name: "no network namespace (empty one, as before)", lat: [], perSecond: [], failed: 0, reasons: new Set<string>() }, network: false, extra: {} },
    { row: { name: "network, no rules", lat: [], perSecond: [], failed: 0, reasons: new Set<string>() }, network: undefined, extra: {} },
    { row: { name: "network, 10 rules", lat: [], perSecond: [], failed: 0, reasons: new Set<string>() }, network: undefined, extra: { security_group_rules: TEN_RULES } },
  ];
  for (let round = 0; round < 2; round++) for (const c of configs) await netRound(c.row, c.network, c.extra, round);
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const base = configs[0]!.row;
  const baseP50 = pct([...base.lat].sort((a, b) => a - b), 50);
  const baseRate = med(base.perSecond);
  log(`
| networking (/bin/true, unprivileged, ${NET_TASKS} × 2 rounds) | p50 create→COMPLETED | p99 | + p50 vs none | tasks/s (${NET_TASKS} at once, median of rounds) | tasks/s vs none | failed |
|---|---|---|---|---|---|---|`);
  for (const { row } of configs) {
    const sorted = [...row.lat].sort((a, b) => a - b);
    const rate = med(row.perSecond);
    log(`| ${row.name} | ${fmt(pct(sorted, 50))} | ${fmt(pct(sorted, 99))} | ${fmt(pct(sorted, 50) - baseP50)} | ${rate.toFixed(1)} | ${((100 * rate) / baseRate - 100).toFixed(0)}% | ${row.failed} |`);
  }
  for (const { row } of configs) for (const reason of row.reasons) log(`- failed (${row.name}): ${reason}`);
}

async function dockerStarts(): Promise<{ first: number[]; cached: number[] }> {
  const registry = await startRegistry();
  const first: number[] = [];
  const cached: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      // A fresh cell each round, so its image cache is empty for the first task.
      const cluster = await startCluster({ cells: [{ cellId: `img-cell-${i}`, dockerRegistry: registry.url }] });
      try {
        await pushBusyboxImage(registry, `bench/busybox${i}`, "latest");
        const rootfs = `docker://${registry.url}/bench/busybox${i}#latest`;
        const a = await runTask(cluster, `img-first-${i}`, { root_fs: rootfs });
        const b = await runTask(cluster, `img-cached-${i}`, { root_fs: rootfs });
        if (a.failed || b.failed) throw new Error(`docker task failed: ${JSON.stringify(await cluster.getTask(`img-first-${i}`))}`);
        first.push(a.ms);
        cached.push(b.ms);
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    await registry.stop();
  }
  return { first, cached };
}

async function main(): Promise<void> {
  const out: string[] = [];
  const log = (line: string): void => {
    out.push(line);
    console.log(line);
  };
  log(`# bench:e2e (${new Date().toISOString()}, ${os.cpus().length} cores, ${TASKS} tasks)`);
  const steal = meterSteal();
  if (process.env.BENCH_ONLY === "network") {
    await networkRows(log);
    log(`\nThe hypervisor kept ${(100 * steal.read()).toFixed(0)}% of the CPU time for other guests (steal) during the run.`);
    return;
  }

  const rows: BenchRow[] = await runRuntimeBench("runc", 20);
  const bare = rows[0]!.medianMs;
  log("\n| runtime scenario | median | p90 | × bare |\n|---|---|---|---|");
  for (const r of rows) log(`| ${r.name} | ${fmt(r.medianMs)} | ${fmt(r.p90Ms)} | ${(r.medianMs / bare).toFixed(2)} |`);

  log("\n| end to end, one cell | p50 create→COMPLETED | p99 | × bare p50 | tasks/s (500 at once) | failed |\n|---|---|---|---|---|---|");
  for (const privileged of [false, true]) {
    const r = await e2eLatency(privileged);
    const failed = r.failed ? `${r.failed} (${r.reasons.join("; ")})` : "0";
    log(`| /bin/true, privileged=${privileged} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${(r.p50 / bare).toFixed(2)} | ${r.perSecond.toFixed(1)} | ${failed} |`);
  }

  await networkRows(log);

  const nats = await startNats();
  try {
    const a = await benchAuction(nats.url, 1000, 10_000);
    log(`\n| auctioneer | cells | tasks | seconds | placements/s |\n|---|---|---|---|---|\n| simulated cells | ${a.cells} | ${a.tasks} | ${a.seconds.toFixed(2)} | ${a.placementsPerSecond.toFixed(0)} |`);
  } finally {
    await nats.dispose();
  }

  const d = await dockerStarts();
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  log(`\n| docker image task (local registry) | median create→COMPLETED |\n|---|---|\n| first pull | ${fmt(med(d.first))} |\n| cached | ${fmt(med(d.cached))} |`);
  log(`\nThe hypervisor kept ${(100 * steal.read()).toFixed(0)}% of the CPU time for other guests (steal) during the run.`);

}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
