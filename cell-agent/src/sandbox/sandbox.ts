import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { DiskTemplates } from "./disk-templates.js";
import {
  createContainerCgroups,
  discoverHierarchies,
  parentCgroup,
  removeEverywhere,
  removeIfEmpty,
  type ContainerCgroups,
  type Hierarchies,
} from "./cgroups.js";
import { SandboxError, SandboxStateError } from "./errors.js";
import { killQuietly, killTree } from "./kill-tree.js";
import { buildConfig, buildProcess, DEFAULT_PATH, HIDDEN_BUSYBOX, type OciProcess } from "./oci-config.js";
import { readRuntimeErrors, type OciCli } from "./oci-cli.js";
import { mergeEnv } from "./process-env.js";
import type { Gates } from "./gates.js";
import { bundleMounts, claimBundle, prepareFilesystem, teardownFilesystem } from "./sandbox-fs.js";
import { RANGE_SIZE, type SubidRanges } from "./subids.js";
import { superviseRuntimeProcess, waitForPid } from "./supervise.js";
import type { DestroyOptions, NamespaceFiles, ProcessIO, ProcessResult, ProcessSpec, RunOnceOptions, Sandbox, SandboxSpec } from "./types.js";
import { pathExists } from "./path-exists.js";
import { resolveUser } from "./users.js";

/** What every sandbox of one runtime shares. */
export interface SandboxContext {
  cli: OciCli;
  containersDir: string;
  hierarchies: Hierarchies;
  cellKey: string;
  /** Subordinate id ranges of user-namespaced containers. */
  subids: SubidRanges;
  /** Where the runtime reaches each rootfs (the work dir is 0700 root). */
  gates: Gates;
  /** Static busybox bind-mounted into multi-process containers to run the idle init. */
  initBinary: string;
  templates: DiskTemplates;
  logger: Logger;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const KILL_WAIT_MS = 5000;
// PID 1 of a multi-process container: says it is up, then idles and reaps orphans until killed.
const INIT_SCRIPT = `echo ready; trap "exit 0" TERM; while :; do ${HIDDEN_BUSYBOX} sleep 1000000000 & wait; done`;
/** runOnce asChild's PID 1: runs its arguments as its one child and exits with the child's status. */
const AS_CHILD_SCRIPT = '"$@" & wait $!';

/** A runtime invocation in flight: a runOnce process (the container's init) or an exec. */
interface ActiveProcess {
  kind: "init" | "exec";
  child: ChildProcess;
  pidFile: string;
  closed: Promise<void>;
}

interface InitHandle {
  pid: number;
  alive: () => boolean;
  exited: Promise<void>;
}

/** Prepares the filesystem and cgroups of one container; its processes start on the first run. */
export async function createSandbox(ctx: SandboxContext, spec: SandboxSpec): Promise<Sandbox> {
  if (!ID_PATTERN.test(spec.id)) throw new SandboxError(`invalid sandbox id ${JSON.stringify(spec.id)}`);
  const bundle = path.join(ctx.containersDir, spec.id);
  await claimBundle(bundle);
  let hostRootUid = 0;
  const cgroupsP = createContainerCgroups(ctx.hierarchies, ctx.cellKey, spec.id, spec.limits);
  const rootfsP = (async () => {
    if (!spec.privileged) hostRootUid = await ctx.subids.claim(bundle);
    const rootfs = await prepareFilesystem({
      bundle,
      layers: spec.layers,
      hostRootUid,
      idmap: hostRootUid === 0 ? undefined : { hostId: hostRootUid, size: RANGE_SIZE },
      diskMb: spec.limits.diskMb,
      workdir: spec.workdir,
      bindMounts: spec.bindMounts,
      templates: ctx.templates,
    });
    return { rootfs, gated: await ctx.gates.open(spec.id, hostRootUid, rootfs) };
  })();
  const [cg, fs] = await Promise.allSettled([cgroupsP, rootfsP]);
  if (cg.status === "rejected" || fs.status === "rejected") {
    await Promise.allSettled([
      removeFilesystem(ctx, spec.id, bundle),
      (cg.status === "fulfilled" ? cg.value.release() : Promise.resolve()).then(() => removeContainerCgroups(ctx, spec.id)),
    ]);
    throw cg.status === "rejected" ? cg.reason : (fs as PromiseRejectedResult).reason;
  }
  return new OciSandbox(ctx, spec, bundle, fs.value.rootfs, fs.value.gated, hostRootUid, cg.value);
}

/**
 * Closes the gate, unmounts and removes the bundle, then gives the id range back. When the
 * container's processes may still live (stopped false), its ids and files are left for
 * cleanupStale: reusing the ids or deleting a tree they can still write would be unsafe.
 */
async function removeFilesystem(ctx: SandboxContext, id: string, bundle: string, known?: string[], stopped = true): Promise<void> {
  await ctx.gates.close(id);
  if (stopped) await teardownFilesystem(bundle, known, () => ctx.subids.release(bundle));
  else await teardownFilesystem(bundle, known, undefined, { keepFiles: true });
}

class OciSandbox implements Sandbox {
  private init?: Promise<InitHandle>;
  private netns?: Promise<NamespaceFiles | undefined>;
  private destroying?: Promise<void>;
  private seq = 0;
  private ranOnce = false;
  private ranMany = false;
  private readonly active = new Set<ActiveProcess>();

  constructor(
    private readonly ctx: SandboxContext,
    private readonly spec: SandboxSpec,
    private readonly bundle: string,
    readonly rootfsPath: string,
    /** rootfsPath as the runtime reaches it (through the container's gate). */
    private readonly gatedRootfs: string,
    readonly hostRootUid: number,
    private readonly cgroups: ContainerCgroups,
  ) {}

  get id(): string {
    return this.spec.id;
  }

  async run(proc: ProcessSpec, io: ProcessIO, signal?: AbortSignal): Promise<ProcessResult> {
    this.assertUsable();
    if (this.ranOnce) throw new SandboxStateError(`sandbox ${this.id}: run() after runOnce()`);
    this.ranMany = true;
    return this.execInContainer(proc, io, signal);
  }

  /**
   * Fast path for a task that is exactly one process: it becomes the container's init and one
   * `<runtime> run` starts it, waits for it and removes the container. May be called only
   * instead of run(). OOMs are still seen: they are counted on our parent cgroup.
   */
  async runOnce(proc: ProcessSpec, io: ProcessIO, signal?: AbortSignal, opts: RunOnceOptions = {}): Promise<ProcessResult> {
    this.assertUsable();
    if (this.ranOnce || this.ranMany) throw new SandboxStateError(`sandbox ${this.id}: runOnce() must be its only process`);
    if (opts.asChild && !proc.path.startsWith("/")) throw new SandboxError(`sandbox ${this.id}: runOnce asChild needs an absolute path, got ${proc.path}`);
    this.ranOnce = true;
    const [ociProcess, ns] = await Promise.all([this.processFor(proc), this.namespaces(false)]);
    if (opts.asChild) ociProcess.args = [HIDDEN_BUSYBOX, "sh", "-c", AS_CHILD_SCRIPT, "sh", ...ociProcess.args];
    const [oomBefore] = await Promise.all([
      this.cgroups.oomEvents(),
      writeFile(path.join(this.bundle, "config.json"), JSON.stringify(this.config(ociProcess, ns, opts.asChild))),
    ]);
    this.assertUsable(); // destroy() may have started while we prepared
    const files = this.nextFiles("run");
    const child = this.ctx.cli.spawnRun({ id: this.id, bundle: this.bundle, pidFile: files.pid, logFile: files.log });
    // Killing PID 1 of the container's PID namespace takes every process in it down.
    const exitCode = await this.supervise("init", child, files, io, signal, async (pid) => killQuietly(pid));
    return { exitCode, oomKilled: (await this.cgroups.oomEvents()) > oomBefore };
  }

  /** Starts the idle init if needed, then `exec`s the process into the running container. */
  private async execInContainer(proc: ProcessSpec, io: ProcessIO, signal?: AbortSignal): Promise<ProcessResult> {
    const [init, ociProcess] = await Promise.all([this.ensureInit(), this.processFor(proc)]);
    if (!init.alive()) throw new SandboxError(`sandbox ${this.id}: the container has stopped`);
    // runc 1.1 (built with Go 1.19) raises an exec'd process's soft NOFILE to its hard limit
    // before it execs; a hard limit equal to the soft one keeps `ulimit -n` right.
    if (this.ctx.cli.name === "runc") for (const r of ociProcess.rlimits ?? []) r.hard = r.soft;
    const files = this.nextFiles("exec");
    const [oomBefore] = await Promise.all([this.cgroups.oomEvents(), writeFile(files.spec, JSON.stringify(ociProcess))]);
    this.assertUsable();
    const child = this.ctx.cli.spawnExec({ id: this.id, processFile: files.spec, pidFile: files.pid, logFile: files.log, stdin: !!io.stdin });
    // Kill the process and its descendants; the container and its other processes live on.
    const exitCode = await this.supervise("exec", child, files, io, signal, async (pid) => killTree(pid, await this.cgroups.pids()));
    return { exitCode, oomKilled: (await this.cgroups.oomEvents()) > oomBefore };
  }

  async signal(sig: NodeJS.Signals, except?: ReadonlySet<number>): Promise<number[]> {
    this.assertUsable();
    const init = this.init ? await this.init.catch(() => undefined) : undefined;
    const sent: number[] = [];
    for (const pid of await this.cgroups.pids()) {
      // TERM makes the idle init exit, which would kill everything at once.
      if (pid === init?.pid || except?.has(pid)) continue;
      try {
        process.kill(pid, sig);
        sent.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    return sent;
  }

  destroy(opts?: DestroyOptions): Promise<void> {
    this.destroying ??= this.teardown(opts?.onStopped);
    return this.destroying;
  }

  private assertUsable(): void {
    if (this.destroying) throw new SandboxStateError(`sandbox ${this.id} is destroyed`);
  }

  private nextFiles(kind: string): { spec: string; pid: string; log: string } {
    const n = ++this.seq;
    const base = path.join(this.bundle, `${kind}-${n}`);
    return { spec: `${base}.json`, pid: `${base}.pid`, log: `${base}.log` };
  }

  private async supervise(
    kind: ActiveProcess["kind"],
    child: ChildProcess,
    files: { pid: string; log: string },
    io: ProcessIO,
    signal: AbortSignal | undefined,
    kill: (pid: number) => Promise<void>,
  ): Promise<number> {
    const entry = { kind, child, pidFile: files.pid, closed: new Promise<void>((r) => child.once("close", () => r())) };
    this.active.add(entry);
    try {
      return await superviseRuntimeProcess({ child, io, signal, pidFile: files.pid, logFile: files.log, kill });
    } finally {
      this.active.delete(entry);
    }
  }

  private async processFor(proc: ProcessSpec): Promise<OciProcess> {
    const user = await resolveUser(this.rootfsPath, proc.user);
    return buildProcess({
      args: [proc.path, ...proc.args],
      env: mergeEnv(this.spec.env, proc.env),
      cwd: proc.dir || this.spec.workdir || "/",
      user,
      nofile: proc.nofile,
    });
  }

  private config(process: OciProcess, ns: NamespaceFiles | undefined, withInit = false): Record<string, unknown> {
    return buildConfig({
      rootfs: this.gatedRootfs,
      hostname: this.id.slice(0, 63),
      cgroupsPath: this.cgroups.runtimePath,
      process,
      userns: this.hostRootUid === 0 ? undefined : { hostId: this.hostRootUid, size: RANGE_SIZE },
      initBinary: withInit ? this.ctx.initBinary : undefined,
      netnsPath: ns?.netns,
      usernsPath: ns?.userns,
    });
  }

  /**
   * The container's network (and user) namespace files to join; none without a network. A
   * user-namespaced container's root owns its network namespace when processes will be exec'd
   * into it (runc exec joins the user namespace first) or when it may ping (raw sockets); else
   * the namespace the cell makes in-process, which is cheaper to start, will do.
   */
  private namespaces(withInit: boolean): Promise<NamespaceFiles | undefined> {
    const network = this.spec.network;
    if (!network) return Promise.resolve(undefined);
    const owned = this.hostRootUid !== 0 && (withInit || network.allowsIcmp);
    this.netns ??= network.namespaceFiles(owned ? { hostId: this.hostRootUid, size: RANGE_SIZE } : undefined);
    return this.netns;
  }

  private ensureInit(): Promise<InitHandle> {
    this.assertUsable();
    this.init ??= this.startInit();
    return this.init;
  }

  /** Starts the container with the idle init; resolves once it printed "ready". */
  private async startInit(): Promise<InitHandle> {
    const initProcess = buildProcess({
      args: [HIDDEN_BUSYBOX, "sh", "-c", INIT_SCRIPT],
      env: [DEFAULT_PATH],
      cwd: "/",
      user: { uid: 0, gid: 0 },
    });
    const none: string[] = [];
    initProcess.capabilities = { bounding: none, effective: none, permitted: none, inheritable: none, ambient: none };
    const ns = await this.namespaces(true);
    await writeFile(path.join(this.bundle, "config.json"), JSON.stringify(this.config(initProcess, ns, true)));
    const files = { pid: path.join(this.bundle, "init.pid"), log: path.join(this.bundle, "init.log") };
    const child = this.ctx.cli.spawnRun({ id: this.id, bundle: this.bundle, pidFile: files.pid, logFile: files.log });
    let alive = true;
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    void exited.then(() => (alive = false));
    await waitForReady(child, files.log, this.id);
    const pid = await waitForPid(files.pid, () => !alive);
    if (pid === undefined) throw new SandboxError(`sandbox ${this.id}: container init exited at start`);
    // Keep draining so a chatty init can never block on a full pipe.
    child.stdout?.resume();
    child.stderr?.resume();
    return { pid, alive: () => alive, exited };
  }

  private async teardown(onStopped?: () => void): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<void>): Promise<boolean> => {
      const started = performance.now();
      try {
        await fn();
        this.ctx.logger.debug({ id: this.id, step: what, ms: performance.now() - started }, "sandbox destroy step");
        return true;
      } catch (err) {
        this.ctx.logger.warn({ err, id: this.id, step: what }, "sandbox destroy step failed");
        errors.push(err);
        return false;
      }
    };
    const stopped = await attempt("stop container", () => this.stopContainer());
    // Memory and the container slot are free now; the filesystem (disk) goes below.
    if (stopped) onStopped?.();
    await Promise.all([
      attempt("remove filesystem", () =>
        removeFilesystem(this.ctx, this.id, this.bundle, bundleMounts(this.bundle, this.spec.limits.diskMb, this.spec.bindMounts), stopped),
      ),
      attempt("remove cgroups", async () => {
        await this.cgroups.release();
        await removeContainerCgroups(this.ctx, this.id);
      }),
    ]);
    if (errors.length > 0) throw new SandboxError(`sandbox ${this.id}: destroy incomplete: ${errors.map(String).join("; ")}`);
  }

  private async stopContainer(): Promise<void> {
    const init = this.init ? await this.init.catch(() => undefined) : undefined;
    if (init?.alive()) killQuietly(init.pid);
    for (const entry of this.active) {
      // A runOnce process is the container's init: kill it; exec'd ones die with the idle init.
      if (entry.kind !== "init") continue;
      const runtimeExited = (): boolean => entry.child.exitCode !== null || entry.child.signalCode !== null;
      const pid = await waitForPid(entry.pidFile, runtimeExited);
      // While the runtime runs, its init is not reaped, so the pid cannot have been reused.
      if (pid !== undefined && !runtimeExited()) killQuietly(pid);
    }
    const waits = [...this.active].map((e) => e.closed);
    if (init) waits.push(init.exited);
    await withTimeout(Promise.all(waits), KILL_WAIT_MS);
    // A foreground `run` deletes its container when PID 1 exits; anything left is forced away.
    if (await pathExists(path.join(this.ctx.cli.root, this.id))) await this.ctx.cli.delete(this.id, true);
  }
}

async function waitForReady(child: ChildProcess, logFile: string, id: string): Promise<void> {
  const stderr: Buffer[] = [];
  child.stderr?.on("data", (c: Buffer) => stderr.push(c));
  const ready = await new Promise<boolean>((resolve) => {
    let seen = "";
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (seen.includes("ready\n")) {
        child.stdout?.off("data", onData);
        resolve(true);
      }
    };
    child.stdout?.on("data", onData);
    child.once("close", () => resolve(false));
    child.once("error", () => resolve(false));
  });
  if (ready) return;
  const logged = await readRuntimeErrors(logFile);
  const detail = logged.join("; ") || Buffer.concat(stderr).toString().trim() || "no output";
  throw new SandboxError(`sandbox ${id}: container failed to start: ${detail}`);
}

async function removeContainerCgroups(ctx: SandboxContext, id: string): Promise<void> {
  // Re-read the mounts: a crun runtime elsewhere may have moved a controller to its own
  // hierarchy since this runtime started, and the OCI runtime created our path there too.
  const hierarchies = await discoverHierarchies();
  await removeEverywhere(hierarchies, parentCgroup(ctx.cellKey, id));
  await removeIfEmpty(hierarchies, path.posix.dirname(parentCgroup(ctx.cellKey, id)));
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
