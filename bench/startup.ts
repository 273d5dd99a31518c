// Time from spawn to the `ready` line for `diego receptor` and `diego cell`, run from the
// TypeScript sources through tsx (as bin/diego.js did) and from the compiled dist/, in one run.
// Usage:
//   npm run bench:startup [-- --runs 7]
// The cell needs root. Rounds alternate the two ways, so that outside load hits both alike.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { startEmbeddedNats } from "../src/nats/index.js";
import buildDist from "../test/support/build-dist.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

type Way = "tsx" | "compiled";
const entry: Record<Way, string[]> = {
  tsx: ["--import", "tsx", path.join(ROOT, "src/cli/main.ts")],
  compiled: [path.join(ROOT, "bin/diego.js")],
};

interface Sample {
  ms: number;
  /** CPU seconds the process used until it was ready. */
  cpu: number;
}

/** utime + stime of `pid`, in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

async function startOnce(way: Way, args: string[]): Promise<Sample> {
  const started = performance.now();
  const child = spawn(process.execPath, [...entry[way], ...args], {
    cwd: ROOT,
    env: { ...process.env, DIEGO_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const ms = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("ready")) resolve(performance.now() - started);
    });
    child.once("exit", (code) => reject(new Error(`diego ${args[0]} (${way}) exited (${code}) before ready: ${err.slice(-1000)}`)));
  });
  const cpu = await cpuSeconds(child.pid!);
  child.kill("SIGTERM");
  await exited;
  return { ms, cpu };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  buildDist();
  const dir = await mkdtemp(path.join(os.tmpdir(), "diego-bench-startup-"));
  const nats = await startEmbeddedNats({ dataDir: path.join(dir, "nats"), port: 0 });
  const roles: Record<string, string[]> = {
    receptor: ["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"],
    cell: ["cell", "--nats", nats.url, "--data-dir", path.join(dir, "cell"), "--cell-id", "bench-startup"],
  };
  const samples = new Map<string, Sample[]>();
  const loadBefore = os.loadavg()[0]!;
  try {
    // One start of each, not counted: the cell builds its root filesystem on the first one.
    for (const args of Object.values(roles)) for (const way of ["tsx", "compiled"] as Way[]) await startOnce(way, args);
    for (let round = 0; round < RUNS; round++) {
      for (const [role, args] of Object.entries(roles)) {
        const ways: Way[] = round % 2 ? ["compiled", "tsx"] : ["tsx", "compiled"];
        for (const way of ways) {
          const key = `${role} ${way}`;
          samples.set(key, [...(samples.get(key) ?? []), await startOnce(way, args)]);
        }
      }
    }
  } finally {
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const cpuModel = os.cpus()[0]?.model ?? "unknown CPU";
  console.log(
    `Start to ready, ${RUNS} runs each (rounds alternate the two ways); ${os.cpus().length} cores (${cpuModel}), Node ${process.version}; ` +
      `1-minute load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0]!.toFixed(1)} after.\n`,
  );
  console.log("| process | run as | median | min | max | CPU s until ready (median) |");
  console.log("|---|---|---:|---:|---:|---:|");
  for (const [key, list] of samples) {
    const ms = list.map((s) => s.ms);
    const [role, way] = key.split(" ");
    const shown = way === "tsx" ? "tsx (sources)" : "node (dist/)";
    console.log(
      `| diego ${role} | ${shown} | ${median(ms).toFixed(0)} ms | ${Math.min(...ms).toFixed(0)} ms | ${Math.max(...ms).toFixed(0)} ms | ${median(list.map((s) => s.cpu)).toFixed(2)} |`,
    );
  }
  for (const role of Object.keys(roles)) {
    const before = median(samples.get(`${role} tsx`)!.map((s) => s.ms));
    const after = median(samples.get(`${role} compiled`)!.map((s) => s.ms));
    console.log(`\ndiego ${role}: ${(before / after).toFixed(1)}× faster to ready compiled (${before.toFixed(0)} → ${after.toFixed(0)} ms)`);
  }
}

await main();
