// How many sandboxes a cell should start at once, and with which runtime: N full sandboxes
// (user namespace, limits, runOnce of /bin/true, destroy) at each concurrency, for runc and
// crun, interleaved so outside load skews both alike. Prints starts/s and per-start p50/p99.
//
//   npx tsx bench/start-concurrency.ts [--count 60] [--levels 1,2,4,8] [--runtimes runc,crun]

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import PQueue from "p-queue";
import { ensureBusyboxRootfs } from "../cell-agent/src/rootfs/index.js";
import { createSandboxRuntime, type SandboxRuntime } from "../cell-agent/src/sandbox/index.js";

type RuntimeName = "runc" | "crun";
const argv = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const count = Number(flag("--count", "60"));
const levels = flag("--levels", "1,2,4,8").split(",").map(Number);
const runtimes = flag("--runtimes", "runc,crun").split(",") as RuntimeName[];
const silentIO = { stdout: () => undefined, stderr: () => undefined };

async function round(rt: SandboxRuntime, rootfs: string, concurrency: number, tag: string): Promise<{ perSec: number; p50: number; p99: number }> {
  const queue = new PQueue({ concurrency });
  const samples: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      queue.add(async () => {
        const t0 = performance.now();
        const sb = await rt.create({
          id: `sc-${tag}-${i}`,
          layers: [rootfs],
          env: [],
          privileged: false,
          limits: { memoryMb: 64, cpuWeight: 50, diskMb: 0, pids: 256 },
        });
        const res = await sb.runOnce!({ path: "/bin/true", args: [], env: [] }, silentIO);
        samples.push(performance.now() - t0);
        await sb.destroy();
        if (res.exitCode !== 0) throw new Error(`/bin/true exited ${res.exitCode}`);
      }),
    ),
  );
  const secs = (performance.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return { perSec: count / secs, p50: at(0.5), p99: at(0.99) };
}

const dir = await mkdtemp(path.join(os.tmpdir(), "start-concurrency-"));
try {
  const rootfs = await ensureBusyboxRootfs(path.join(dir, "busybox"));
  const rts = new Map(runtimes.map((r) => [r, createSandboxRuntime({ runtime: r, workDir: path.join(dir, r) })]));
  // Warm up each runtime (cgroup fixes, templates, page cache).
  for (const [name, rt] of rts) await round(rt, rootfs, 2, `warm-${name}`);
  console.log(`| runtime | at once | starts/s | p50 ms | p99 ms |  (${count} sandboxes per row, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)})`);
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const c of levels) {
    for (const [name, rt] of rts) {
      const r = await round(rt, rootfs, c, `${name}-${c}`);
      console.log(`| ${name} | ${c} | ${r.perSec.toFixed(1)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} |`);
    }
  }
  console.log(`load after: ${os.loadavg()[0]!.toFixed(1)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
