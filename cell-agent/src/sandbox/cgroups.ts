import { createHash } from "node:crypto";
import { access, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { isCode } from "./errors.js";
import { hostHelper } from "./host-helper.js";
import type { SandboxLimits } from "./types.js";

// Layout (cgroup v1): <hierarchy>/diego/<cellKey>/<id> is ours and carries the limits;
// <id>/c is handed to the OCI runtime as cgroupsPath. The runtime deletes its own cgroup when
// the container goes (with the victim-side oom_kill counter in it), ours survives until destroy():
// OOMs are counted on it with an eventfd on memory.oom_control (cgroup v1 has no hierarchical
// OOM counter), so they can be read after the runtime is done.
export const CGROUP_ROOT = "diego";
const RUNTIME_LEAF = "c";
const MIB = 1024 * 1024;

/**
 * Controller name (or "name=systemd") → mount point of its v1 hierarchy. On a hybrid host the
 * cgroup2 mount is listed as "unified": runc and crun create the container's path there too and
 * remove only its leaf, so our removal must cover it.
 */
export type Hierarchies = Map<string, string>;

/** Reads the mounted cgroup hierarchies from the host mount table. */
export async function discoverHierarchies(): Promise<Hierarchies> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  const found: Hierarchies = new Map();
  for (const line of table.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const [fstype, , superOpts] = post.split(" ");
    const mountPoint = pre.split(" ")[4] ?? "";
    if (fstype === "cgroup2") found.set("unified", mountPoint);
    if (fstype !== "cgroup") continue;
    for (const opt of (superOpts ?? "").split(",")) {
      if (KNOWN_CONTROLLERS.has(opt) || opt.startsWith("name=")) found.set(opt, mountPoint);
    }
  }
  return found;
}

const KNOWN_CONTROLLERS = new Set([
  "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
  "net_cls", "net_prio", "perf_event", "rdma", "misc",
]);

/** Short stable key for a cell's work dir, so cells on one host never share cgroups. */
export function cellKey(workDir: string): string {
  return createHash("sha256").update(path.resolve(workDir)).digest("hex").slice(0, 12);
}

/** Relative cgroup path of one container's parent (limits) cgroup. */
export function parentCgroup(key: string, id: string): string {
  return path.posix.join("/", CGROUP_ROOT, key, id);
}

/** cpu.shares for a 1..100 weight; 0 means the default weight. */
export function cpuShares(weight: number): number {
  if (!weight || weight <= 0) return 1024;
  return Math.max(2, Math.round((1024 * Math.min(weight, 100)) / 100));
}

export interface ContainerCgroups {
  /** cgroupsPath for the OCI config: a child of the parent cgroup. */
  readonly runtimePath: string;
  /** OOM events of the parent so far (counted by an eventfd, so they survive the runtime's cgroup). */
  oomEvents(): Promise<number>;
  /** Host pids of the processes currently in the container's cgroup. */
  pids(): Promise<number[]>;
  /** Stops the OOM counting (the cgroup dirs themselves go with removeEverywhere). */
  release(): Promise<void>;
}

/** Creates the parent cgroup of one container and writes its limits there. */
export async function createContainerCgroups(
  hierarchies: Hierarchies,
  key: string,
  id: string,
  limits: SandboxLimits,
): Promise<ContainerCgroups> {
  const rel = parentCgroup(key, id);
  const dir = (controller: string): string | undefined => {
    const mount = hierarchies.get(controller);
    return mount === undefined ? undefined : path.join(mount, rel);
  };
  const created = ["memory", "cpu", "cpuacct", "pids"].map(dir).filter((d): d is string => d !== undefined);
  await Promise.all(created.map((d) => mkdir(d, { recursive: true })));
  await writeLimits(dir, limits);
  // Without a limit of ours the container cannot hit one: nothing to watch.
  const memory = dir("memory");
  const watch = memory && limits.memoryMb > 0 ? await hostHelper().oomWatch(memory) : undefined;

  const leaf = (controller: string): string | undefined => {
    const d = dir(controller);
    return d === undefined ? undefined : path.join(d, RUNTIME_LEAF);
  };
  return {
    runtimePath: path.posix.join(rel, RUNTIME_LEAF),
    // A lost watch (the helper died) reads as "no OOM" rather than failing the process.
    oomEvents: async () => (watch ? hostHelper().oomCount(watch).catch(() => 0) : 0),
    pids: () => readPids(leaf("pids") ?? leaf("memory")),
    release: async () => {
      if (watch) await hostHelper().oomUnwatch(watch).catch(() => undefined);
    },
  };
}

async function writeLimits(dir: (c: string) => string | undefined, limits: SandboxLimits): Promise<void> {
  const memory = dir("memory");
  if (memory && limits.memoryMb > 0) {
    const bytes = String(limits.memoryMb * MIB);
    // memsw must never be below the memory limit, so memory goes first.
    await writeFile(path.join(memory, "memory.limit_in_bytes"), bytes);
    await writeIfExists(path.join(memory, "memory.memsw.limit_in_bytes"), bytes);
  }
  const cpu = dir("cpu");
  if (cpu) await writeFile(path.join(cpu, "cpu.shares"), String(cpuShares(limits.cpuWeight)));
  const pids = dir("pids");
  if (pids && limits.pids > 0) await writeFile(path.join(pids, "pids.max"), String(limits.pids));
}

async function writeIfExists(file: string, value: string): Promise<void> {
  try {
    await access(file);
  } catch {
    return; // swap accounting is off on this kernel
  }
  await writeFile(file, value);
}

async function readPids(leafDir: string | undefined): Promise<number[]> {
  if (!leafDir) return [];
  try {
    const text = await readFile(path.join(leafDir, "cgroup.procs"), "utf8");
    return text.split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * SIGKILLs every process in the cgroup tree rel (found through the pids or memory hierarchy)
 * and waits briefly for them to leave. For crash recovery: whatever is there is ours.
 */
export async function killAllUnder(hierarchies: Hierarchies, rel: string): Promise<number> {
  const mount = hierarchies.get("pids") ?? hierarchies.get("memory");
  if (!mount) return 0;
  const root = path.join(mount, rel);
  let killed = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    const pids = await treePids(root);
    if (pids.length === 0) return killed;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
        killed++;
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return killed;
}

async function treePids(dir: string): Promise<number[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const own = await readPids(dir);
  const nested = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => treePids(path.join(dir, e.name))));
  return [...own, ...nested.flat()];
}

/** Removes rel (and its children) from every mounted hierarchy. */
export async function removeEverywhere(hierarchies: Hierarchies, rel: string): Promise<void> {
  const mounts = new Set(hierarchies.values());
  await Promise.all([...mounts].map((m) => removeTree(path.join(m, rel))));
}

/** rmdir depth-first; retries briefly while the last tasks are still leaving. */
export async function removeTree(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isCode(err, "ENOENT")) return;
    throw err;
  }
  await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => removeTree(path.join(dir, e.name))));
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      if (isCode(err, "ENOENT")) return;
      if (!isCode(err, "EBUSY") || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Tries to remove an empty cell-level directory; leaves it when other containers still use it. */
export async function removeIfEmpty(hierarchies: Hierarchies, rel: string): Promise<void> {
  const mounts = new Set(hierarchies.values());
  await Promise.all([...mounts].map((m) => rmdir(path.join(m, rel)).catch(() => undefined)));
}
