// npm run bench:load — 1,000 trivial tasks into `diego up` (the compiled build, as a user runs
// it), drained by its one cell. Reports in one run, for each cell layout (--cell-process):
// tasks/s to COMPLETED, p50/p99 create→COMPLETED per task, the p99 of GET /v1/cells made during
// the drain (one every 25 ms, against an idle baseline), and the most containers starting at
// once (the cell's diego_cell_containers_starting_peak).
//
//   BENCH_LOAD_TASKS=1000 BENCH_LOAD_LAYOUTS=shared,own BENCH_LOAD_ARGS="--max-starting 4" npm run bench:load
//
// The receptor's RSS at 100,000 stored tasks is measured by bench/receptor-memory.ts; its row
// joins this report through receptorMemoryRow() below.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { TaskState } from "../src/gen/diego/v1/task_pb.js";
import { connectNats, openTasksBucket } from "../src/nats/index.js";
import { createTaskIndex } from "../src/store/index.js";
import buildDist from "../test/support/build-dist.js";
import { measureReceptorMemory } from "./receptor-memory.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const TASKS = Number(process.env.BENCH_LOAD_TASKS ?? 1000);
const LAYOUTS = (process.env.BENCH_LOAD_LAYOUTS ?? "shared,own").split(",").filter(Boolean);
const EXTRA_ARGS = (process.env.BENCH_LOAD_ARGS ?? "").split(" ").filter(Boolean);
const SUBMITTERS = 16;
const PROBE_INTERVAL_MS = 25;
const IDLE_PROBES = 100;

interface Up {
  child: ChildProcess;
  api: string;
  natsUrl: string;
  credsFile: string;
  stop(): Promise<void>;
}

async function startUp(dataDir: string, layout: string): Promise<Up> {
  const args = ["up", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--nats-port", "0", "--router-listen", "127.0.0.1:0", "--cell-process", layout, ...EXTRA_ARGS];
  const child = spawn(process.execPath, [path.join(ROOT, "bin/diego.js"), ...args], {
    env: { ...process.env, DIEGO_LOG_LEVEL: "warn", DIEGO_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const l = out.split("\n").find((x) => x.includes(" ready on "));
      if (l) resolve(l);
    });
    child.once("exit", (code) => reject(new Error(`diego up exited (${code}) before ready`)));
  });
  const m = /ready on (\S+) \(nats (\S+), credentials ([^,]+),/.exec(line);
  if (!m) throw new Error(`unexpected ready line: ${line}`);
  return {
    child,
    api: `http://${m[1]}`,
    natsUrl: m[2]!,
    credsFile: m[3]!,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: SUBMITTERS + 2 });

function request(method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { "content-type": "application/json" } : {} }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const percentile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const sortNum = (a: number[]): number[] => [...a].sort((x, y) => x - y);

/** GET /v1/cells one after another, PROBE_INTERVAL_MS apart, until stopped; latencies in ms. */
function probe(api: string): { stop(): Promise<number[]> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const res = await request("GET", `${api}/v1/cells`);
      if (res.status !== 200) throw new Error(`GET /v1/cells answered ${res.status}`);
      samples.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

interface Row {
  layout: string;
  tasksPerSec: number;
  drainSec: number;
  submitSec: number;
  p50: number;
  p99: number;
  failed: number;
  apiIdleP99: number;
  apiP50: number;
  apiP99: number;
  apiMax: number;
  apiCount: number;
  peakStarting: number;
  maxStarting: string;
  runtime: string;
}

/** The `diego up` running now: stopped if the bench itself is interrupted. */
let current: Up | undefined;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
  });
}

async function runOnce(layout: string): Promise<Row> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "bench-load-"));
  const up = await startUp(dataDir, layout);
  current = up;
  const nc = await connectNats({ url: up.natsUrl, name: "bench-load", auth: { credsFile: up.credsFile } });
  const index = await createTaskIndex(await openTasksBucket(nc));
  await index.ready();
  try {
    // Idle baseline, and the cell is registered.
    const idle = probe(up.api);
    await new Promise((r) => setTimeout(r, IDLE_PROBES * PROBE_INTERVAL_MS * 1.2));
    const idleSamples = sortNum(await idle.stop());

    const created = new Map<string, number>();
    const latency: number[] = [];
    let failed = 0;
    let lastDone = 0;
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    const off = index.subscribe((guid, _b, after) => {
      if (after?.state !== TaskState.COMPLETED || !created.has(guid)) return;
      lastDone = performance.now();
      latency.push(lastDone - created.get(guid)!);
      if (after.record.task?.failed) failed++;
      created.delete(guid);
      if (latency.length === TASKS) allDone();
    });

    const drainProbe = probe(up.api);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: SUBMITTERS }, async () => {
        for (let i = next++; i < TASKS; i = next++) {
          const guid = `load-${i}`;
          created.set(guid, performance.now());
          const res = await request("POST", `${up.api}/v1/tasks`, JSON.stringify({ task_guid: guid, domain: "bench-load", stack: "lucid64", action: { run: { path: "/bin/true" } } }));
          if (res.status !== 201) throw new Error(`POST /v1/tasks answered ${res.status}: ${res.text}`);
        }
      }),
    );
    const submitSec = (performance.now() - t0) / 1000;
    await done;
    off();
    const apiSamples = sortNum(await drainProbe.stop());
    const drainSec = (lastDone - t0) / 1000;
    const metrics = (await request("GET", `${up.api}/metrics`)).text;
    const peak = /^diego_cell_containers_starting_peak\{[^}]*\} (\d+)/m.exec(metrics);
    const sorted = sortNum(latency);
    const arg = (flag: string, dflt: string): string => {
      const i = EXTRA_ARGS.indexOf(flag);
      return i >= 0 ? EXTRA_ARGS[i + 1]! : dflt;
    };
    return {
      layout,
      tasksPerSec: TASKS / drainSec,
      drainSec,
      submitSec,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      failed,
      apiIdleP99: percentile(idleSamples, 0.99),
      apiP50: percentile(apiSamples, 0.5),
      apiP99: percentile(apiSamples, 0.99),
      apiMax: apiSamples.at(-1) ?? NaN,
      apiCount: apiSamples.length,
      peakStarting: peak ? Number(peak[1]) : NaN,
      maxStarting: arg("--max-starting", `default (${2 * os.availableParallelism()})`),
      runtime: arg("--runtime", "default (crun)"),
    };
  } finally {
    await index.stop();
    await nc.drain().catch(() => undefined);
    await up.stop();
    current = undefined;
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The receptor's memory and list times at 100,000 stored tasks (bench/receptor-memory.ts). */
async function receptorMemoryRows(): Promise<string> {
  const r = await measureReceptorMemory({ tasks: 100_000 });
  return [
    `| receptor RSS increase at ${r.tasks} stored tasks | ${(r.rssAfterMb - r.rssBeforeMb).toFixed(1)} MB (${r.rssBytesPerTask.toFixed(0)} B a task) |`,
    `| REST list of ${r.tasks} (to the last byte) | ${ms(r.restListMs)} |`,
    `| gRPC ListTasks of ${r.tasks} | ${ms(r.grpcListMs)} |`,
  ].join("\n");
}

const ms = (n: number): string => `${n.toFixed(0)} ms`;

async function main(): Promise<void> {
  buildDist();
  console.log(`bench:load (${new Date().toISOString()}, ${os.availableParallelism()} cores, ${TASKS} /bin/true tasks submitted by ${SUBMITTERS} clients into diego up; 1-minute load ${os.loadavg()[0]!.toFixed(1)} at the start)\n`);
  console.log("| cell process | runtime | --max-starting | tasks/s to COMPLETED | drain | submit | p50 create→COMPLETED | p99 | failed | GET /v1/cells p50 / p99 / max during drain (n) | idle p99 | peak starting at once |");
  console.log("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const layout of LAYOUTS) {
    const r = await runOnce(layout);
    console.log(
      `| ${r.layout} | ${r.runtime} | ${r.maxStarting} | ${r.tasksPerSec.toFixed(1)} | ${r.drainSec.toFixed(1)} s | ${r.submitSec.toFixed(1)} s | ${ms(r.p50)} | ${ms(r.p99)} | ${r.failed} | ${ms(r.apiP50)} / ${ms(r.apiP99)} / ${ms(r.apiMax)} (${r.apiCount}) | ${ms(r.apiIdleP99)} | ${r.peakStarting} |`,
    );
  }
  console.log(`\n1-minute load at the end: ${os.loadavg()[0]!.toFixed(1)}`);
  console.log("\n| measurement | value |\n|---|---:|");
  console.log(await receptorMemoryRows());
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
