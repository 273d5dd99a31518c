// npm run bench:lrp — LRP instances started per second on one real cell (the cell and auctioneer
// `diego up` runs, in this process): desire 1 LRP of N sleeping busybox instances, time until all
// are RUNNING; then M LRPs of 4, the same. Then crash-to-RUNNING of an immediate restart: K LRPs
// of one instance whose action exits 1 shortly after it started, each restarted at once twice
// (crashes 1 and 2); the time from the crash's record to the next RUNNING, beside a bare
// `<runtime> run /bin/true` measured in the same run. BENCH_LRP_INSTANCES (default 200),
// BENCH_LRP_COUNT (50) and BENCH_LRP_CRASHES (8) make it smaller; BENCH_LRP_RUNTIME picks the
// runtime (default: the cell's); BENCH_LRP_TRACE=1 adds per-state spans and this process's CPU.
import { create, fromBinary } from "@bufbuild/protobuf";
import { cellSettings } from "../cell-agent/src/agent/settings.js";
import { ActionSchema, type Action } from "../src/gen/diego/v1/actions_pb.js";
import { ActualLRPSchema, ActualLrpState, DesiredLRPCreateRequestSchema, type ActualLRP } from "../src/gen/diego/v1/lrp_pb.js";
import { connectNats, openLrpBuckets, subjects } from "../src/nats/index.js";
import { createLrpStore } from "../src/store/index.js";
import { startCluster } from "../test/fixtures/cluster.js";
import { benchBareRun, type RuntimeName } from "./runtime-bench.js";

const N = Number(process.env.BENCH_LRP_INSTANCES ?? 200);
const M = Number(process.env.BENCH_LRP_COUNT ?? 50);
const K = Number(process.env.BENCH_LRP_CRASHES ?? 8);
// The runtime `diego up` uses unless told otherwise.
const RUNTIME = (process.env.BENCH_LRP_RUNTIME ?? cellSettings.runtime.default) as RuntimeName;
const BARE_RUNS = 20;

const run = (path: string, args: string[]): Action => create(ActionSchema, { action: { case: "run", value: { path, args } } });
const SLEEP = run("/bin/sleep", ["100000"]);
// Crashes a moment after it started, so the crash is of a RUNNING instance.
const CRASH = run("/bin/sh", ["-c", "sleep 0.3; exit 1"]);

const p50 = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const cluster = await startCluster({
    cells: [{ cellId: "bench-lrp-cell", runtime: RUNTIME, containers: N + 4 * M + K + 8, memoryMb: 65536, lrpTiming: { stopGraceMs: 500 } }],
  });
  const nc = await connectNats({ url: cluster.nats.url, name: "bench-lrp" });
  const buckets = await openLrpBuckets(nc);
  const store = createLrpStore(nc, buckets);
  // Instances RUNNING now, by key, fed by the bucket's watch.
  const running = new Set<string>();
  // First time each instance was seen in each state.
  const seen = new Map<string, Partial<Record<ActualLrpState, number>>>();
  // Immediate restarts: when the crash was recorded (UNCLAIMED again), then crash-to-RUNNING.
  const crashedAt = new Map<string, number>();
  const restarts: number[] = [];
  /** Of each restart: crash record to CLAIMED (the auction), CLAIMED to RUNNING (the cell). */
  const restartClaims: number[] = [];
  const restartStarts: number[] = [];
  const given = new Map<string, ActualLRP>();
  let onChange = (): void => undefined;
  const watch = await buckets.actual.watch({ key: ">" });
  void (async () => {
    for await (const e of watch) {
      const now = performance.now();
      const a = e.operation === "PUT" && e.value.length > 0 ? fromBinary(ActualLRPSchema, e.value) : undefined;
      if (a) {
        const m = seen.get(e.key) ?? {};
        m[a.state] ??= now;
        seen.set(e.key, m);
        const before = given.get(e.key);
        if (a.state === ActualLrpState.UNCLAIMED && before && a.crashCount > before.crashCount) crashedAt.set(e.key, now);
        const at = crashedAt.get(e.key);
        if (a.state === ActualLrpState.CLAIMED && at !== undefined) restartClaims.push(now - at);
        if (a.state === ActualLrpState.RUNNING && at !== undefined) {
          restarts.push(now - at);
          restartStarts.push(now - at - (restartClaims.at(-1) ?? 0));
          crashedAt.delete(e.key);
        }
        given.set(e.key, a);
      } else given.delete(e.key);
      if (a?.state === ActualLrpState.RUNNING) running.add(e.key);
      else running.delete(e.key);
      onChange();
    }
  })();
  const until = (done: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      onChange = () => {
        if (done()) resolve();
      };
      onChange();
    });
  const desire = async (processGuid: string, instances: number, action = SLEEP): Promise<void> => {
    await store.desire(create(DesiredLRPCreateRequestSchema, { processGuid, domain: "bench", rootfs: "preloaded:lucid64", instances, action, memoryMb: 8 }));
    nc.publish(subjects.auctionKick, "");
  };
  const rows: string[] = [];
  try {
    let t = performance.now();
    await desire("bench-one", N);
    await until(() => running.size >= N);
    let s = (performance.now() - t) / 1000;
    rows.push(`1 LRP of ${N}: all RUNNING in ${s.toFixed(2)} s, ${(N / s).toFixed(1)} instances/s`);
    t = performance.now();
    await Promise.all(Array.from({ length: M }, (_, i) => desire(`bench-four-${i}`, 4)));
    await until(() => running.size >= N + 4 * M);
    s = (performance.now() - t) / 1000;
    rows.push(`${M} LRPs of 4: all RUNNING in ${s.toFixed(2)} s, ${((4 * M) / s).toFixed(1)} instances/s`);
    // One crashing LRP at a time: crash 3 goes to CRASHED (the backoff), which ends its turn.
    for (let i = 0; i < K; i++) {
      const key = `bench-crash-${i}.0`;
      await desire(`bench-crash-${i}`, 1, CRASH);
      await until(() => given.get(key)?.state === ActualLrpState.CRASHED);
    }
    if (K > 0) {
      const bare = await benchBareRun(RUNTIME, BARE_RUNS);
      const p = p50(restarts);
      rows.push(
        `crash-to-RUNNING of an immediate restart: p50 ${p.toFixed(0)} ms (${restarts.length} restarts); ` +
          `bare ${RUNTIME} run /bin/true: median ${bare.medianMs.toFixed(0)} ms; ratio ${(p / bare.medianMs).toFixed(2)}`,
      );
    }
  } finally {
    watch.stop();
    store.close();
    await nc.drain().catch(() => undefined);
    await cluster.stop();
  }
  for (const r of rows) console.log(r);
  if (process.env.BENCH_LRP_TRACE) {
    const span = (from: ActualLrpState, to: ActualLrpState): number[] =>
      [...seen.values()].filter((m) => m[from] !== undefined && m[to] !== undefined).map((m) => m[to]! - m[from]!);
    console.log(`restarts: p50 crash->CLAIMED ${p50(restartClaims).toFixed(0)} ms, CLAIMED->RUNNING ${p50(restartStarts).toFixed(0)} ms`);
    const cpu = process.cpuUsage();
    console.log(`this process's CPU: user ${(cpu.user / 1e6).toFixed(1)} s, system ${(cpu.system / 1e6).toFixed(1)} s`);
    console.log(
      `p50 UNCLAIMED->CLAIMED ${p50(span(ActualLrpState.UNCLAIMED, ActualLrpState.CLAIMED)).toFixed(0)} ms, ` +
        `CLAIMED->RUNNING ${p50(span(ActualLrpState.CLAIMED, ActualLrpState.RUNNING)).toFixed(0)} ms`,
    );
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
