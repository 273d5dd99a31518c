import { existsSync } from "node:fs";
import { chmod, mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import pino, { type Logger } from "pino";
import { cellKey, CGROUP_ROOT, discoverHierarchies, killAllUnder, removeEverywhere } from "./cgroups.js";
import { runCommand } from "./command.js";
import { ensureCrunCompatibleCgroups } from "./crun-cgroups.js";
import { createDiskTemplates } from "./disk-templates.js";
import { createGates } from "./gates.js";
import { RuntimeUnavailableError } from "./errors.js";
import { killQuietly } from "./kill-tree.js";
import { mountPointsUnder, unmountIfMounted } from "./mounts.js";
import { createOciCli } from "./oci-cli.js";
import { createSandbox, type SandboxContext } from "./sandbox.js";
import { removeTree } from "./remove-tree.js";
import { teardownFilesystem } from "./sandbox-fs.js";
import { createSubidRanges } from "./subids.js";
import type { SandboxRuntime } from "./types.js";

const DEFAULT_UID_BASE = 100000;

export interface SandboxRuntimeOptions {
  runtime: "runc" | "crun";
  /** This cell's private directory: runtime state, bundles, overlay mounts. Made 0700. */
  workDir: string;
  logger?: Logger;
  /** Lowest host id of the per-container subordinate id ranges (65536 ids each, in /etc/subuid). */
  uidBase?: number;
  /** Where the cell keeps the gates through which runtimes reach each rootfs (default /run). */
  runDir?: string;
  /** Runtime binary (default: the runtime's name, looked up on PATH). */
  binary?: string;
  /** Static busybox bind-mounted read-only as the idle init of multi-process containers. */
  initBinary?: string;
  /** crun only: move controllers off cgroup2 when crun would refuse the hybrid layout (default true). */
  fixHybridCgroups?: boolean;
}

/**
 * A runc/crun backed SandboxRuntime. Each sandbox is one OCI container with its own mount,
 * PID, IPC, UTS and network (loopback only) namespaces, plus a user namespace unless privileged.
 */
export function createSandboxRuntime(opts: SandboxRuntimeOptions): SandboxRuntime {
  const logger = opts.logger ?? pino({ level: "silent" });
  const workDir = path.resolve(opts.workDir);
  const containersDir = path.join(workDir, "containers");
  const cli = createOciCli(opts.runtime, opts.binary ?? opts.runtime, path.join(workDir, "state"), existsSync("/usr/bin/choom"));
  const key = cellKey(workDir);
  let ready: Promise<SandboxContext> | undefined;

  const context = (): Promise<SandboxContext> => {
    ready ??= (async () => {
      const version = await runCommand(cli.binary, ["--version"]).catch((err: unknown) => ({ code: -1, stderr: String(err) }));
      if (version.code !== 0) throw new RuntimeUnavailableError(`${cli.binary} is not usable: ${version.stderr.trim()}`);
      if (opts.runtime === "crun") await ensureCrunCompatibleCgroups(opts.fixHybridCgroups ?? true, logger);
      const hierarchies = await discoverHierarchies();
      if (!hierarchies.has("memory")) {
        throw new RuntimeUnavailableError("the sandbox needs cgroup v1 hierarchies (no memory controller mounted)");
      }
      await mkdir(containersDir, { recursive: true, mode: 0o700 });
      await mkdir(cli.root, { recursive: true, mode: 0o700 });
      // Nobody but root passes: runtimes reach user-namespaced rootfs through the gates.
      await Promise.all([workDir, containersDir, cli.root].map((d) => chmod(d, 0o700)));
      return {
        cli,
        containersDir,
        hierarchies,
        cellKey: key,
        subids: createSubidRanges(opts.uidBase ?? DEFAULT_UID_BASE),
        gates: await createGates(opts.runDir ?? "/run", key),
        initBinary: opts.initBinary ?? "/bin/busybox",
        templates: createDiskTemplates(path.join(workDir, "disk-templates")),
        logger,
      };
    })();
    ready.catch(() => (ready = undefined));
    return ready;
  };

  return {
    name: opts.runtime,
    create: async (spec) => createSandbox(await context(), spec),
    cleanupStale: async () => cleanupStale(await context()),
  };
}

/**
 * Removes what a killed cell left behind under its workDir: containers in its runtime state
 * dir, mounts and bundles in its containers dir, and its cgroups. Call before creating sandboxes.
 */
async function cleanupStale(ctx: SandboxContext): Promise<void> {
  const listed = await ctx.cli.list().catch((err: unknown) => {
    ctx.logger.warn({ err }, "listing stale containers failed");
    return [];
  });
  // Killing the init ourselves spares `delete --force` its polling wait.
  for (const c of listed) if (c.pid > 0 && c.status !== "stopped") killQuietly(c.pid);
  await Promise.all(listed.map((c) => ctx.cli.delete(c.id, true)));
  // Processes whose runtime state is gone (a deleted state dir) are still in our cgroups.
  const hierarchies = await discoverHierarchies();
  const cellCgroup = path.posix.join("/", CGROUP_ROOT, ctx.cellKey);
  const strays = await killAllUnder(hierarchies, cellCgroup);
  await ctx.gates.reset();
  for (const mountPoint of await mountPointsUnder(ctx.containersDir)) await unmountIfMounted(mountPoint);
  const bundles = (await readdir(ctx.containersDir).catch(() => [])).filter((b) => !b.startsWith(".trash-"));
  await Promise.all(
    bundles.map((b) => {
      const bundle = path.join(ctx.containersDir, b);
      return teardownFilesystem(bundle, undefined, () => ctx.subids.release(bundle));
    }),
  );
  // teardown moves bundles to trash dirs and removes them in the background: finish that here.
  const trash = (await readdir(ctx.containersDir).catch(() => [])).filter((t) => t.startsWith(".trash-"));
  // (A destroy that could not stop its container left its trash and ids for us: all dead by now.)
  await Promise.all(
    trash.map(async (t) => {
      await ctx.subids.release(path.join(ctx.containersDir, t));
      await removeTree(path.join(ctx.containersDir, t));
    }),
  );
  await removeEverywhere(hierarchies, cellCgroup);
  if (listed.length + bundles.length + strays > 0) {
    ctx.logger.info({ containers: listed.length, bundles: bundles.length, strays }, "removed stale sandboxes");
  }
}
