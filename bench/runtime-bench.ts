// Sandbox runtime benchmark: how much a full sandbox (overlay, cgroups, limits, user namespace,
// disk cap) costs on top of a bare `runc run` of /bin/true on the same busybox rootfs. Scenarios
// are interleaved (one sample of each per round) so a busy machine skews them all alike.
// The functions return medians in ms; `npm run bench:e2e` wires them in, and
//
//   npx tsx bench/runtime-bench.ts [--runtime runc|crun] [--iterations 20]
//
// prints a table.

import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ensureBusyboxRootfs } from "../cell-agent/src/rootfs/index.js";
import { createSandboxRuntime, type SandboxLimits, type SandboxRuntime } from "../cell-agent/src/sandbox/index.js";
import { buildConfig, buildProcess } from "../cell-agent/src/sandbox/oci-config.js";

export type RuntimeName = "runc" | "crun";

export interface BenchRow {
  name: string;
  medianMs: number;
  p90Ms: number;
}

export interface SandboxScenario {
  /** Use Sandbox.runOnce (one runtime invocation) instead of init + exec. */
  once?: boolean;
  limits?: SandboxLimits;
  privileged?: boolean;
}

const NO_LIMITS: SandboxLimits = { memoryMb: 0, cpuWeight: 0, diskMb: 0, pids: 0 };
const LIMITS: SandboxLimits = { memoryMb: 128, cpuWeight: 50, diskMb: 0, pids: 256 };
const silentIO = { stdout: () => undefined, stderr: () => undefined };
const WARMUP_ROUNDS = 2;

/** The scenarios of the full table: runOnce and init+exec, each bare, limited, disk-capped, userns. */
export const STANDARD_SCENARIOS: SandboxScenario[] = [true, false].flatMap((once) => [
  { once },
  { once, limits: LIMITS },
  { once, limits: { ...NO_LIMITS, diskMb: 64 } },
  { once, privileged: false },
  { once, privileged: false, limits: { ...LIMITS, diskMb: 64 } },
]);

type Step = (round: number) => Promise<void>;

interface Bench {
  dir: string;
  rootfs: string;
  runtime: RuntimeName;
}

function exec(file: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => resolve(code ?? -1));
  });
}

/** One `<runtime> run` of /bin/true straight on the busybox rootfs, same namespaces, no overlay. */
async function bareStep(b: Bench): Promise<{ step: Step; done: () => Promise<void> }> {
  const bundle = path.join(b.dir, "bare");
  const root = path.join(b.dir, "bare-state");
  const cgroup = `diego-bench-${path.basename(b.dir)}`;
  await mkdir(bundle);
  const process = buildProcess({ args: ["/bin/true"], env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 } });
  const config = buildConfig({ rootfs: b.rootfs, hostname: "bare", cgroupsPath: `/${cgroup}/bare`, process });
  await writeFile(path.join(bundle, "config.json"), JSON.stringify(config));
  return {
    step: async (round) => {
      const code = await exec(b.runtime, [`--root=${root}`, "run", `--bundle=${bundle}`, `bare-${round}`]);
      if (code !== 0) throw new Error(`${b.runtime} run exited ${code}`);
    },
    // The runtime removes its own cgroup, not the parent it created for it.
    done: async () => {
      await Promise.all(
        ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "hugetlb", "unified"].map((c) =>
          rmdir(`/sys/fs/cgroup/${c}/${cgroup}`).catch(() => undefined),
        ),
      );
    },
  };
}

/** One create + run(/bin/true) + destroy of a full sandbox. */
function sandboxStep(b: Bench, rt: SandboxRuntime, s: SandboxScenario, index: number): Step {
  return async (round) => {
    const sb = await rt.create({
      id: `bench-${index}-${round}`,
      layers: [b.rootfs],
      env: [],
      privileged: s.privileged ?? true,
      limits: s.limits ?? NO_LIMITS,
    });
    const proc = { path: "/bin/true", args: [], env: [] };
    const res = s.once && sb.runOnce ? await sb.runOnce(proc, silentIO) : await sb.run(proc, silentIO);
    await sb.destroy();
    if (res.exitCode !== 0) throw new Error(`/bin/true exited ${res.exitCode}`);
  };
}

export function describeScenario(runtime: RuntimeName, s: SandboxScenario): string {
  const parts = [s.once ? "runOnce" : "run (init+exec)"];
  const l = s.limits ?? NO_LIMITS;
  if (l.memoryMb || l.cpuWeight || l.pids) parts.push("mem+cpu+pids");
  if (l.diskMb) parts.push(`disk ${l.diskMb}MB`);
  if (s.privileged === false) parts.push("userns");
  return `sandbox ${runtime} ${parts.join(", ")}`;
}

function summarize(name: string, samples: number[]): BenchRow {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { name, medianMs: at(0.5), p90Ms: at(0.9) };
}

/**
 * Measures the bare runtime and each scenario, interleaved round by round. Row 0 is the bare
 * `<runtime> run /bin/true`; the others follow the order of scenarios.
 */
export async function runRuntimeBench(
  runtime: RuntimeName = "runc",
  iterations = 20,
  scenarios: SandboxScenario[] = STANDARD_SCENARIOS,
): Promise<BenchRow[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "runtime-bench-"));
  const b: Bench = { dir, rootfs: await ensureBusyboxRootfs(path.join(dir, "busybox")), runtime };
  const bare = await bareStep(b);
  try {
    const rt = createSandboxRuntime({ runtime, workDir: path.join(dir, "cell") });
    const steps: Step[] = [bare.step, ...scenarios.map((s, i) => sandboxStep(b, rt, s, i))];
    const samples: number[][] = steps.map(() => []);
    for (let round = 0; round < iterations + WARMUP_ROUNDS; round++) {
      for (const [i, step] of steps.entries()) {
        const started = performance.now();
        await step(round);
        if (round >= WARMUP_ROUNDS) samples[i]!.push(performance.now() - started);
      }
    }
    return [
      summarize(`bare ${runtime} run /bin/true`, samples[0]!),
      ...scenarios.map((s, i) => summarize(describeScenario(runtime, s), samples[i + 1]!)),
    ];
  } finally {
    await bare.done();
    await rm(dir, { recursive: true, force: true });
  }
}

/** (a) Median of bare `<runtime> run` of /bin/true on the busybox rootfs. */
export async function benchBareRun(runtime: RuntimeName = "runc", iterations = 20): Promise<BenchRow> {
  const [row] = await runRuntimeBench(runtime, iterations, []);
  return row!;
}

/** (b, c) Median of create + run(/bin/true) + destroy for one scenario, with the bare run beside it. */
export async function benchSandbox(
  scenario: SandboxScenario,
  runtime: RuntimeName = "runc",
  iterations = 20,
): Promise<{ bare: BenchRow; sandbox: BenchRow }> {
  const [bare, sandbox] = await runRuntimeBench(runtime, iterations, [scenario]);
  return { bare: bare!, sandbox: sandbox! };
}

export function formatTable(rows: BenchRow[]): string {
  const bare = rows[0]?.medianMs ?? 1;
  const lines = ["| scenario | median ms | p90 ms | × bare |", "| --- | ---: | ---: | ---: |"];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.medianMs.toFixed(1)} | ${r.p90Ms.toFixed(1)} | ${(r.medianMs / bare).toFixed(2)} |`);
  }
  return lines.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const argv = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runtime = (flag("--runtime") ?? "runc") as RuntimeName;
  const iterations = Number(flag("--iterations") ?? 20);
  console.log(formatTable(await runRuntimeBench(runtime, iterations)));
}
