// Wall time of one unprivileged /bin/true container, step by step, with and without a network,
// one container at a time (no cell, no NATS): where does networking's wall time go?
// Run: npx tsx bench/net-trace.ts
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { startCellNetwork } from "../cell-agent/src/network/index.js";
import { ensureBusyboxRootfs } from "../cell-agent/src/rootfs/index.js";
import { createSandboxRuntime } from "../cell-agent/src/sandbox/index.js";

const N = Number(process.env.N ?? 30);
const privileged = process.env.PRIV === "1";
// OVERLAP=1: as a cell does, the next container starts while the last one is torn down.
const overlap = process.env.OVERLAP === "1";
let teardown: Promise<void> = Promise.resolve();
const rows: Record<string, Record<string, number[]>> = {};
const add = (mode: string, step: string, ms: number): void => {
  ((rows[mode] ??= {})[step] ??= []).push(ms);
};
const dir = await mkdtemp(path.join(os.tmpdir(), "net-trace-"));
const rootfs = await ensureBusyboxRootfs(path.join(dir, "busybox"));

let mode = "none";
// Debug lines with a step and ms (network and sandbox spans) go into the table too.
const logger = pino({ level: "debug" }, {
  write(line: string) {
    const o = JSON.parse(line) as { step?: string; ms?: number };
    if (o.step && typeof o.ms === "number") add(mode, `  ${o.step}`, o.ms);
  },
});
const network = await startCellNetwork({ workDir: path.join(dir, "net"), logger });
const io = { stdout: () => undefined, stderr: () => undefined };
const runtime = createSandboxRuntime({ runtime: (process.env.RUNTIME as "runc" | "crun") ?? "runc", workDir: path.join(dir, "cell"), logger });
let seq = 0;
async function one(m: "none" | "net"): Promise<void> {
  // With OVERLAP, blocks of one mode: only a container of the same mode is torn down meanwhile.
  if (m !== mode) await teardown;
  mode = m;
  const id = `tr-${mode}-${seq++}`;
  let t = performance.now();
  const t0 = t;
  const lap = (step: string): void => {
    const now = performance.now();
    add(m, step, now - t);
    t = now;
  };
  // As the cell does: the rules load while the filesystem is prepared.
  const attaching = mode === "net" ? network.attach({ id, rules: [] }) : undefined;
  const [net, sb] = await Promise.all([
    attaching,
    runtime.create({
      id, layers: [rootfs], env: [], privileged, limits: { memoryMb: 0, cpuWeight: 0, diskMb: 0, pids: 0 },
      network: attaching && { allowsIcmp: process.env.ICMP === "1", namespaceFiles: async (owner) => (await attaching).namespaceFiles(owner) },
      bindMounts: attaching ? [{ source: network.resolvConf, destination: "/etc/resolv.conf", readonly: true }] : undefined,
    }),
  ]);
  lap("attach + create");
  const r = await sb.runOnce!({ path: "/bin/true", args: [], env: [] }, io);
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
  lap("runOnce");
  add(m, "TOTAL to result", performance.now() - t0);
  const down = (async () => {
    await sb.destroy();
    lap("destroy");
    await net?.release();
    lap("release");
  })();
  if (overlap) teardown = down;
  else await down;
}
for (let i = 0; i < 3; i++) {
  await one("none");
  await one("net");
}
for (const k of Object.keys(rows)) rows[k] = {};
const BLOCK = overlap ? 5 : 1;
for (let i = 0; i < N; i += BLOCK) {
  for (let k = 0; k < BLOCK; k++) await one("none");
  for (let k = 0; k < BLOCK; k++) await one("net");
}
await teardown;
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const steps = [...new Set([...Object.keys(rows.net!), ...Object.keys(rows.none!)])];
console.log(`| step (median of ${N}, ${privileged ? "privileged" : "unprivileged"}) | no network | network | + |`);
console.log("|---|---:|---:|---:|");
for (const s of steps) {
  const a = med(rows.none![s] ?? [0]);
  const b = med(rows.net![s] ?? [0]);
  console.log(`| ${s} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b - a).toFixed(1)} |`);
}
await network.close();
await runtime.cleanupStale();
await rm(dir, { recursive: true, force: true });
