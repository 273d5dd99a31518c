// npm run bench:lrp-sim — LRP placements per second against 1,000 SIMULATED cells
// (test/fixtures/sim-cells.ts: real NATS protocol and real store writes, no containers) with a
// real nats-server and the real auctioneer (`diego auctioneer`, its own process). Desires 1 LRP
// of 200, then 50 LRPs of 4, then 1 LRP of 10,000; for each: time until every instance is
// CLAIMED (placements/s) and RUNNING, and how the instances spread over cells and zones.
//
// BENCH_SIM_CELLS (1000), BENCH_LRP_INSTANCES (200), BENCH_LRP_COUNT (50), BENCH_SIM_LARGE
// (10000; 0 skips it) size it; BENCH_SIM_PROFILE=<dir> runs the auctioneer with --cpu-prof there
// and prints where its time went.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import { ActionSchema } from "../src/gen/diego/v1/actions_pb.js";
import { ActualLRPSchema, ActualLrpState, DesiredLRPCreateRequestSchema } from "../src/gen/diego/v1/lrp_pb.js";
import { connectNats, openLrpBuckets, subjects } from "../src/nats/index.js";
import { createLrpStore } from "../src/store/index.js";
import { startNats } from "../test/fixtures/nats.js";
import { startSimCells, type SimCells } from "../test/fixtures/sim-cells.js";
import { meterCpu } from "./proc-cpu.js";
import { summarizeProfiles } from "./profile-summary.js";

const CELLS = Number(process.env.BENCH_SIM_CELLS ?? 1000);
const N = Number(process.env.BENCH_LRP_INSTANCES ?? 200);
const M = Number(process.env.BENCH_LRP_COUNT ?? 50);
const LARGE = Number(process.env.BENCH_SIM_LARGE ?? 10_000);
const PROFILE_DIR = process.env.BENCH_SIM_PROFILE;
/** A file for the auctioneer's debug log (one line per auction, with its stats). */
const AUCTION_LOG = process.env.BENCH_SIM_AUCTION_LOG;
const REPO = path.resolve(import.meta.dirname, "..");
const CELL_TTL = "30s";

const SLEEP = create(ActionSchema, { action: { case: "run", value: { path: "/bin/sleep", args: ["100000"] } } });

/** `diego auctioneer` from the sources, as its own process; resolves once it is ready. */
async function spawnAuctioneer(natsUrl: string): Promise<ChildProcess> {
  const nodeArgs = PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(REPO, "src/cli/main.ts"), "auctioneer", "--nats", natsUrl, "--cell-ttl", CELL_TTL], {
    cwd: REPO,
    env: { ...process.env, DIEGO_LOG_LEVEL: AUCTION_LOG ? "debug" : "warn", DIEGO_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", AUCTION_LOG ? openSync(AUCTION_LOG, "w") : "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`auctioneer exited (${code}) before ready`)));
  });
  return child;
}

interface Phase {
  name: string;
  instances: number;
  createdS: number;
  claimedS: number;
  runningS: number;
  /** CPU seconds each process used during the phase. */
  cpu: Record<string, number>;
}

async function main(): Promise<void> {
  const nats = await startNats();
  console.error(`nats-server at ${nats.url}; starting ${CELLS} simulated cells`);
  const sim: SimCells = await startSimCells({ natsUrl: nats.url, count: CELLS, cellTtlMs: 30_000 });
  const auctioneer = await spawnAuctioneer(nats.url);
  // Also when this process dies of an error: no auctioneer left behind.
  process.once("exit", () => auctioneer.kill("SIGKILL"));
  console.error("auctioneer ready");
  const cpu = meterCpu({ auctioneer: auctioneer.pid!, "nats-server": nats.pid, "bench (sim cells)": process.pid });
  const nc = await connectNats({ url: nats.url, name: "bench-lrp-sim" });
  const buckets = await openLrpBuckets(nc);
  const store = createLrpStore(nc, buckets);

  // Instance records by state, fed by the bucket's watch.
  const state = new Map<string, ActualLrpState>();
  const counts = { claimed: 0, running: 0, total: 0 };
  const placed = (s: ActualLrpState | undefined): boolean => s === ActualLrpState.CLAIMED || s === ActualLrpState.RUNNING;
  const waiters = new Set<() => void>();
  const onChange = (): void => {
    for (const w of waiters) w();
  };
  const watch = await buckets.actual.watch({ key: ">" });
  void (async () => {
    for await (const e of watch) {
      const before = state.get(e.key);
      const after = e.operation === "PUT" && e.value.length > 0 ? fromBinary(ActualLRPSchema, e.value).state : undefined;
      if (after === undefined) state.delete(e.key);
      else state.set(e.key, after);
      counts.total += (after !== undefined ? 1 : 0) - (before !== undefined ? 1 : 0);
      counts.claimed += (placed(after) ? 1 : 0) - (placed(before) ? 1 : 0);
      counts.running += (after === ActualLrpState.RUNNING ? 1 : 0) - (before === ActualLrpState.RUNNING ? 1 : 0);
      onChange();
    }
  })();
  const until = (test: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (!test()) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });

  const desire = async (processGuid: string, instances: number): Promise<void> => {
    await store.desire(create(DesiredLRPCreateRequestSchema, { processGuid, domain: "bench", rootfs: "preloaded:lucid64", instances, action: SLEEP, memoryMb: 8, diskMb: 8 }));
    nc.publish(subjects.auctionKick, "");
  };

  /** Desires the LRPs and times creation, placement and RUNNING of their instances. */
  const phase = async (name: string, lrps: Array<[string, number]>): Promise<Phase> => {
    const base = counts.running;
    const n = lrps.reduce((a, [, i]) => a + i, 0);
    const t0 = performance.now();
    const s = (): number => (performance.now() - t0) / 1000;
    const marks = { createdS: 0, claimedS: 0, runningS: 0 };
    const cpuBefore = cpu.read();
    const created = until(() => counts.total >= base + n).then(() => (marks.createdS = s()));
    const claimed = until(() => counts.claimed >= base + n).then(() => (marks.claimedS = s()));
    // The creates run in slices, as an API's clients would send them (and so a 10,000-instance
    // desire does not open 10,000 requests at once).
    for (let i = 0; i < lrps.length; i += 10) await Promise.all(lrps.slice(i, i + 10).map(([g, k]) => desire(g, k)));
    await created;
    console.error(`${name}: created, ${counts.claimed - base} claimed so far`);
    await claimed;
    console.error(`${name}: claimed`);
    await until(() => counts.running >= base + n);
    marks.runningS = s();
    const cpuAfter = cpu.read();
    return { name, instances: n, ...marks, cpu: Object.fromEntries(Object.entries(cpuAfter).map(([k, v]) => [k, v - cpuBefore[k]!])) };
  };

  const phases: Phase[] = [];
  const spread: string[] = [];
  const describeSpread = (guids: string[]): string => {
    const perCell = sim.cells.map((c) => guids.reduce((a, g) => a + (c.counts().get(g) ?? 0), 0));
    const zones = new Map<string, number>();
    sim.cells.forEach((c, i) => zones.set(c.zone, (zones.get(c.zone) ?? 0) + perCell[i]!));
    const used = perCell.filter((x) => x > 0).length;
    return `${used} cells used, ${Math.min(...perCell.filter((x) => x > 0))}-${Math.max(...perCell)} instances per used cell, zones ${[...zones].map(([z, k]) => `${z}=${k}`).join(" ")}`;
  };
  try {
    phases.push(await phase(`1 LRP of ${N}`, [["sim-one", N]]));
    spread.push(`1 LRP of ${N}: ${describeSpread(["sim-one"])}`);
    const fours = Array.from({ length: M }, (_, i): [string, number] => [`sim-four-${i}`, 4]);
    phases.push(await phase(`${M} LRPs of 4`, fours));
    spread.push(`${M} LRPs of 4 (each): ${describeSpread([fours[0]![0]])}; all ${M}: ${describeSpread(fours.map(([g]) => g))}`);
    if (LARGE > 0) {
      phases.push(await phase(`1 LRP of ${LARGE}`, [["sim-large", LARGE]]));
      spread.push(`1 LRP of ${LARGE}: ${describeSpread(["sim-large"])}`);
    }
  } finally {
    const used = cpu.read();
    watch.stop();
    store.close();
    auctioneer.kill("SIGTERM");
    await new Promise((r) => auctioneer.once("exit", r));
    await nc.drain().catch(() => undefined);
    await sim.stop();
    await nats.dispose();
    console.log(`${CELLS} simulated cells (3 zones), auctioneer in its own process; ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}`);
    for (const p of phases) {
      console.log(
        `${p.name}: created in ${p.createdS.toFixed(2)} s, all CLAIMED in ${p.claimedS.toFixed(2)} s (${(p.instances / p.claimedS).toFixed(0)} placements/s), all RUNNING in ${p.runningS.toFixed(2)} s`,
      );
      const auctioneerCpu = p.cpu.auctioneer!;
      console.log(
        `  CPU seconds: ${Object.entries(p.cpu).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}; ${(p.instances / Math.max(auctioneerCpu, 0.01)).toFixed(0)} placements per auctioneer CPU-second`,
      );
    }
    for (const s of spread) console.log(`spread: ${s}`);
    const st = sim.stats();
    console.log(`cells answered ${st.bids} bid requests and ${st.workRequests} work requests; ${st.claimed} claims, ${st.lost} lost`);
    console.log(`CPU seconds in all (with starts): ${Object.entries(used).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`);
  }
  if (PROFILE_DIR) console.log(await summarizeProfiles(PROFILE_DIR));
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
