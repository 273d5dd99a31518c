import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename } from "node:fs/promises";
import path from "node:path";
import { isCode, SandboxError } from "./errors.js";
import type { DiskTemplates } from "./disk-templates.js";
import type { Idmap } from "./host-helper.js";
import { bindIntoRootfs, bundlePaths, mountPointsUnder, mountRootfs, unmountAll, unmountIfMounted } from "./mounts.js";
import { removeTree } from "./remove-tree.js";
import { mkdirInRootfs } from "./safe-path.js";
import type { BindMount } from "./types.js";

// One container's bundle directory (0700 root, like everything in the cell's work dir):
//   config.json, exec-N.json, exec-N.log, ...    runtime files
//   subids                                       the container's subordinate id range (unprivileged)
//   rootfs/                                      overlay mount point (= Sandbox.rootfsPath), nosuid,nodev
//   lower/N                                      layer N: a symlink, or an idmapped mount while mounting
//   fs/{upper,work}                              upper/work dirs, a nosuid,nodev bind (disk_mb = 0)
//   disk.img + disk/{upper,work}                 sized ext4 image, nosuid,nodev (disk_mb > 0)
// The runtime reaches rootfs through the container's gate (gates.ts), never through this dir.

export interface FilesystemSpec {
  bundle: string;
  layers: string[];
  /** Host uid of container root: 0, or the start of its id range for a user-namespaced container. */
  hostRootUid: number;
  /** The id mapping of a user-namespaced container. */
  idmap?: Idmap;
  diskMb: number;
  workdir?: string;
  bindMounts?: BindMount[];
  templates: DiskTemplates;
}

/** Creates the bundle dir, which claims the id on this cell: a second create with it fails here. */
export async function claimBundle(bundle: string): Promise<void> {
  try {
    await mkdir(bundle, { mode: 0o700 });
  } catch (err) {
    throw new SandboxError(`sandbox ${path.basename(bundle)} already exists (or ${bundle} cannot be created)`, {
      cause: err,
    });
  }
  await chmod(bundle, 0o700);
}

/** Mounts the container's root filesystem inside a claimed bundle; returns rootfsPath. */
export async function prepareFilesystem(spec: FilesystemSpec): Promise<string> {
  const { bundle, hostRootUid } = spec;
  const rootfs = bundlePaths(bundle, spec.diskMb).rootfs;
  const disk = spec.diskMb > 0 ? await spec.templates.templateFor(spec.diskMb) : undefined;
  await mountRootfs({ bundle, layers: spec.layers, idmap: spec.idmap, owner: hostRootUid, disk });
  if (spec.workdir && spec.workdir !== "/") await mkdirInRootfs(rootfs, spec.workdir, hostRootUid);
  // Mounted by the cell before the runtime starts, so the runtime never looks up a host path.
  for (const m of spec.bindMounts ?? []) await bindIntoRootfs(rootfs, m, hostRootUid);
  return rootfs;
}

/** The mount points prepareFilesystem creates, innermost first (undefined: read the mount table). */
export function bundleMounts(bundle: string, diskMb: number, bindMounts: BindMount[] = []): string[] | undefined {
  if (bindMounts.length > 0) return undefined;
  const p = bundlePaths(bundle, diskMb);
  return [p.rootfs, p.upperFs];
}

/**
 * Unmounts everything under bundle (overlay first, then the disk) and removes it. Idempotent.
 * known: the mounts the caller made, which spares reading the mount table on the usual path.
 * unmounted: runs once nothing is mounted any more, before the files go (releases the ids).
 * keepFiles: only rename the bundle away; cleanupStale deletes it at the cell's next start.
 */
export async function teardownFilesystem(
  bundle: string,
  known?: string[],
  unmounted?: () => Promise<void>,
  opts: { keepFiles?: boolean } = {},
): Promise<void> {
  if (!known || !(await unmountAll(known))) {
    for (const mountPoint of await mountPointsUnder(bundle)) await unmountIfMounted(mountPoint);
    const left = await mountPointsUnder(bundle);
    // Never recurse into a mount we failed to remove.
    if (left.length > 0) throw new SandboxError(`cannot remove ${bundle}: still mounted at ${left.join(", ")}`);
  }
  await unmounted?.();
  // Renaming frees the id at once; the files go in the background (cleanupStale sweeps up
  // after a crash, as trash dirs sit in the same containers dir).
  const trash = path.join(path.dirname(bundle), `.trash-${path.basename(bundle)}-${randomBytes(4).toString("hex")}`);
  try {
    await rename(bundle, trash);
  } catch (err) {
    if (isCode(err, "ENOENT")) return;
    throw err;
  }
  // The upper dir is container-written: never a recursive delete by path (remove-tree.ts).
  if (!opts.keepFiles) void removeTree(trash).catch(() => undefined);
}
