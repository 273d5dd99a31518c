import { execFile } from "node:child_process";
import { access, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { cellKey, createSandboxRuntime } from "../../cell-agent/src/sandbox/index.js";
import { LogMessageSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { connectNats, openTasksBucket, subjects } from "../../src/nats/index.js";
import { createTaskIndex, type TaskIndex } from "../../src/store/index.js";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";

// Shared by the fault tests: real `diego` processes killed with SIGKILL, the on-disk layout of a
// cell (to check what a killed cell leaves behind), and counters fed by NATS log lines.

const run = promisify(execFile);

/** Every `diego` process a test started, so afterAll can SIGKILL the lot even after a failure. */
export interface ProcessSet {
  spawn(args: string[], env?: NodeJS.ProcessEnv): Promise<DiegoProcess>;
  killAll(): Promise<void>;
}

export function createProcessSet(): ProcessSet {
  const live = new Set<DiegoProcess>();
  return {
    async spawn(args, env = {}) {
      const p = await spawnDiego(args, env);
      live.add(p);
      p.child.once("exit", () => live.delete(p));
      return p;
    },
    async killAll() {
      await Promise.all([...live].map((p) => p.kill("SIGKILL")));
      live.clear();
    },
  };
}

export const isDead = (p: DiegoProcess): boolean => p.child.exitCode !== null || p.child.signalCode !== null;

/** Where `diego cell --data-dir D --cell-id C` keeps its containers (see src/cli/cell-commands.ts). */
export interface CellLayout {
  /** The sandbox runtime's work dir. */
  runtimeDir: string;
  /** runc --root. */
  stateRoot: string;
  /** Bundles and overlay mounts. */
  containersDir: string;
  /** The cell's cgroup dir name under <hierarchy>/diego/. */
  cgroupKey: string;
}

export function cellLayout(dataDir: string, cellId: string): CellLayout {
  const runtimeDir = path.resolve(dataDir, "cells", cellId, "containers");
  return {
    runtimeDir,
    stateRoot: path.join(runtimeDir, "state"),
    containersDir: path.join(runtimeDir, "containers"),
    cgroupKey: cellKey(runtimeDir),
  };
}

export interface ListedContainer {
  id: string;
  /** Host pid of the container's init (0 once stopped). */
  pid: number;
  status: string;
}

/** What `runc list` reports under the cell's state root. */
/**
 * The containers the cell's OCI runtime lists under its state root. The cell runs crun by
 * default and runc where crun is not usable, so both are asked; a container is in one of them.
 */
export async function ociList(layout: CellLayout): Promise<ListedContainer[]> {
  try {
    await access(layout.stateRoot);
  } catch {
    return [];
  }
  const listed = await Promise.all(["runc", "crun"].map((bin) => listWith(bin, layout.stateRoot)));
  return listed.flat();
}

async function listWith(bin: string, stateRoot: string): Promise<ListedContainer[]> {
  const out = await run(bin, [`--root=${stateRoot}`, "list", "--format=json"]).then(
    (r) => r.stdout,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "[]"; // that runtime is not installed
      throw err;
    },
  );
  const parsed = JSON.parse(out.trim() || "[]") as ListedContainer[] | null;
  return (parsed ?? []).map((c) => ({ id: c.id, pid: c.pid, status: c.status }));
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Mount points in the host mount table below dir. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  const prefix = `${dir}/`;
  return table
    .split("\n")
    .map((l) => (l.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(prefix));
}

const CONTROLLERS = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "cpuset"];

/** Container cgroups of the cell left in any v1 hierarchy. */
export async function cgroupsLeft(layout: CellLayout): Promise<string[]> {
  const found: string[] = [];
  for (const c of CONTROLLERS) {
    const dir = `/sys/fs/cgroup/${c}/diego/${layout.cgroupKey}`;
    const children = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const d of children) if (d.isDirectory()) found.push(path.join(dir, d.name));
  }
  return found;
}

export interface Leftovers {
  containers: string[];
  mounts: string[];
  cgroups: string[];
}

export async function leftovers(layout: CellLayout): Promise<Leftovers> {
  return {
    containers: (await ociList(layout)).map((c) => c.id),
    mounts: await mountsUnder(layout.runtimeDir),
    cgroups: await cgroupsLeft(layout),
  };
}

/** What a restarted cell does first: remove the containers, mounts and cgroups of a killed one. */
export async function cleanupCell(layout: CellLayout): Promise<void> {
  await createSandboxRuntime({ runtime: "runc", workDir: layout.runtimeDir }).cleanupStale();
}

/** Counts `started <guid>` lines the tasks print, as received on diego.logs.<logGuid>. */
export interface StartCounter {
  counts: Map<string, number>;
  /** Guids whose start line arrived more than once. */
  duplicates(): string[];
  stop(): Promise<void>;
}

export async function countStarts(nc: NatsConnection, logGuid: string): Promise<StartCounter> {
  const counts = new Map<string, number>();
  const sub = nc.subscribe(subjects.logs(logGuid), {
    callback: (_err, m) => {
      const match = /^started (\S+)$/.exec(fromBinary(LogMessageSchema, m.data).message);
      if (match) counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
    },
  });
  await nc.flush();
  return {
    counts,
    duplicates: () => [...counts].filter(([, n]) => n > 1).map(([g]) => g),
    async stop() {
      await nc.flush().catch(() => undefined);
      sub.unsubscribe();
    },
  };
}

/** What a fault test watches the system through: its own connection, a task index, start lines. */
export interface Observer {
  nc: NatsConnection;
  kv: KV;
  index: TaskIndex;
  starts: StartCounter;
  close(): Promise<void>;
}

export async function openObserver(natsUrl: string, name: string, logGuid: string): Promise<Observer> {
  const nc = await connectNats({ url: natsUrl, name });
  const kv = await openTasksBucket(nc);
  const index = await createTaskIndex(kv);
  await index.ready();
  const starts = await countStarts(nc, logGuid);
  return {
    nc,
    kv,
    index,
    starts,
    async close() {
      await starts.stop();
      await index.stop();
      await nc.drain().catch(() => undefined);
    },
  };
}

/** Polls until check() is truthy; throws after timeoutMs. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Small seeded PRNG (mulberry32): the same seed gives the same chaos schedule. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
