// npm run bench:lrp — LRP instances started per second on one real cell (the cell and auctioneer
// `diego up` runs, in this process): desire 1 LRP of N sleeping busybox instances, time until all
// are RUNNING; then M LRPs of 4, the same. BENCH_LRP_INSTANCES (default 200) and BENCH_LRP_COUNT
// (default 50) make it smaller.
import { create, fromBinary } from "@bufbuild/protobuf";
import { ActionSchema } from "../src/gen/diego/v1/actions_pb.js";
import { ActualLRPSchema, ActualLrpState, DesiredLRPCreateRequestSchema } from "../src/gen/diego/v1/lrp_pb.js";
import { connectNats, openLrpBuckets, subjects } from "../src/nats/index.js";
import { createLrpStore } from "../src/store/index.js";
import { startCluster } from "../test/fixtures/cluster.js";
import { cellSettings } from "../cell-agent/src/agent/settings.js";

const N = Number(process.env.BENCH_LRP_INSTANCES ?? 200);
const M = Number(process.env.BENCH_LRP_COUNT ?? 50);
// The runtime `diego up` uses unless told otherwise.
const RUNTIME = (process.env.BENCH_LRP_RUNTIME ?? cellSettings.runtime.default) as "runc" | "crun";

const SLEEP = create(ActionSchema, { action: { case: "run", value: { path: "/bin/sleep", args: ["100000"] } } });

async function main(): Promise<void> {
  const cluster = await startCluster({
    cells: [{ cellId: "bench-lrp-cell", runtime: RUNTIME, containers: N + 4 * M + 8, memoryMb: 65536, lrpTiming: { stopGraceMs: 500 } }],
  });
  const nc = await connectNats({ url: cluster.nats.url, name: "bench-lrp" });
  const buckets = await openLrpBuckets(nc);
  const store = createLrpStore(nc, buckets);
  // Instances RUNNING now, by key, fed by the bucket's watch.
  const running = new Set<string>();
  // First time each instance was seen in each state (ms since the start).
  const seen = new Map<string, Partial<Record<ActualLrpState, number>>>();
  let onChange = (): void => undefined;
  const watch = await buckets.actual.watch({ key: ">" });
  void (async () => {
    for await (const e of watch) {
      const a = e.operation === "PUT" && e.value.length > 0 ? fromBinary(ActualLRPSchema, e.value) : undefined;
      if (a) {
        const m = seen.get(e.key) ?? {};
        m[a.state] ??= performance.now();
        seen.set(e.key, m);
      }
      const up = a?.state === ActualLrpState.RUNNING;
      if (up) running.add(e.key);
      else running.delete(e.key);
      onChange();
    }
  })();
  const allRunning = (n: number): Promise<void> =>
    new Promise((resolve) => {
      onChange = () => {
        if (running.size >= n) resolve();
      };
      onChange();
    });
  const desire = async (processGuid: string, instances: number): Promise<void> => {
    await store.desire(
      create(DesiredLRPCreateRequestSchema, { processGuid, domain: "bench", rootfs: "preloaded:lucid64", instances, action: SLEEP, memoryMb: 8 }),
    );
    nc.publish(subjects.auctionKick, "");
  };
  const rows: string[] = [];
  try {
    let t = performance.now();
    await desire("bench-one", N);
    await allRunning(N);
    let s = (performance.now() - t) / 1000;
    rows.push(`1 LRP of ${N}: all RUNNING in ${s.toFixed(2)} s, ${(N / s).toFixed(1)} instances/s`);
    t = performance.now();
    await Promise.all(Array.from({ length: M }, (_, i) => desire(`bench-four-${i}`, 4)));
    await allRunning(N + 4 * M);
    s = (performance.now() - t) / 1000;
    rows.push(`${M} LRPs of 4: all RUNNING in ${s.toFixed(2)} s, ${((4 * M) / s).toFixed(1)} instances/s`);
  } finally {
    watch.stop();
    store.close();
    await nc.drain().catch(() => undefined);
    await cluster.stop();
  }
  for (const r of rows) console.log(r);
  if (process.env.BENCH_LRP_TRACE) {
    const p50 = (xs: number[]): number => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
    const span = (from: ActualLrpState, to: ActualLrpState): number[] =>
      [...seen.values()].filter((m) => m[from] !== undefined && m[to] !== undefined).map((m) => m[to]! - m[from]!);
    const cpu = process.cpuUsage();
    console.log(`this process's CPU: user ${(cpu.user / 1e6).toFixed(1)} s, system ${(cpu.system / 1e6).toFixed(1)} s`);
    console.log(`p50 UNCLAIMED->CLAIMED ${p50(span(ActualLrpState.UNCLAIMED, ActualLrpState.CLAIMED)).toFixed(0)} ms, CLAIMED->RUNNING ${p50(span(ActualLrpState.CLAIMED, ActualLrpState.RUNNING)).toFixed(0)} ms`);
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
