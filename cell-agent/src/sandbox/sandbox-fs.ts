import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename } from "node:fs/promises";
import path from "node:path";
import { isCode, SandboxError } from "./errors.js";
import type { DiskTemplates } from "./disk-templates.js";
import { mountPointsUnder, mountRootfs, unmountAll, unmountIfMounted } from "./mounts.js";
import { removeTree } from "./remove-tree.js";
import { mkdirInRootfs } from "./safe-path.js";
import { ensureShiftedLayer } from "./shifted-layers.js";

// One container's bundle directory:
//   config.json, proc-N.json, log-N.json, pid-N   runtime files
//   rootfs/                                       overlay mount point (= Sandbox.rootfsPath)
//   upper/ work/                                  overlay upper/work dirs when disk_mb = 0
//   disk.img + disk/{upper,work}                  sized ext4 image when disk_mb > 0

export interface FilesystemSpec {
  bundle: string;
  layers: string[];
  /** Host uid of container root: 0, or uidBase for a user-namespaced container. */
  hostRootUid: number;
  diskMb: number;
  workdir?: string;
  templates: DiskTemplates;
}

/** Creates the bundle dir, which claims the id on this cell: a second create with it fails here. */
export async function claimBundle(bundle: string): Promise<void> {
  try {
    await mkdir(bundle);
  } catch (err) {
    throw new SandboxError(`sandbox ${path.basename(bundle)} already exists (or ${bundle} cannot be created)`, {
      cause: err,
    });
  }
  // A user-namespaced container root must be able to traverse to its rootfs (no listing).
  await chmod(bundle, 0o711);
}

/** Mounts the container's root filesystem inside a claimed bundle; returns rootfsPath. */
export async function prepareFilesystem(spec: FilesystemSpec): Promise<string> {
  const { bundle, hostRootUid } = spec;
  const rootfs = path.join(bundle, "rootfs");
  const diskDir = path.join(bundle, "disk");
  const base = spec.diskMb > 0 ? diskDir : bundle;
  const [lowers, template] = await Promise.all([
    lowerDirs(spec.layers, hostRootUid),
    spec.diskMb > 0 ? spec.templates.templateFor(spec.diskMb) : undefined,
    mkdir(rootfs),
    spec.diskMb > 0 ? mkdir(diskDir) : undefined,
  ]);
  await mountRootfs({
    lowers,
    upper: path.join(base, "upper"),
    work: path.join(base, "work"),
    owner: hostRootUid,
    target: rootfs,
    linkDir: path.join(bundle, "layers"),
    disk: template ? { template, image: path.join(bundle, "disk.img"), mountPoint: diskDir } : undefined,
  });
  if (spec.workdir && spec.workdir !== "/") await mkdirInRootfs(rootfs, spec.workdir, hostRootUid);
  return rootfs;
}

function lowerDirs(layers: string[], hostRootUid: number): Promise<string[]> {
  if (hostRootUid === 0) return Promise.resolve(layers.map((l) => path.resolve(l)));
  return Promise.all(layers.map((l) => ensureShiftedLayer(l, hostRootUid)));
}

/** The mount points prepareFilesystem creates, innermost first. */
export function bundleMounts(bundle: string, diskMb: number): string[] {
  const rootfs = path.join(bundle, "rootfs");
  return diskMb > 0 ? [rootfs, path.join(bundle, "disk")] : [rootfs];
}

/**
 * Unmounts everything under bundle (overlay first, then the disk) and removes it. Idempotent.
 * known: the mounts the caller made, which spares reading the mount table on the usual path.
 */
export async function teardownFilesystem(bundle: string, known?: string[]): Promise<void> {
  if (!known || !(await unmountAll(known))) {
    for (const mountPoint of await mountPointsUnder(bundle)) await unmountIfMounted(mountPoint);
    const left = await mountPointsUnder(bundle);
    // Never recurse into a mount we failed to remove.
    if (left.length > 0) throw new SandboxError(`cannot remove ${bundle}: still mounted at ${left.join(", ")}`);
  }
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
  void removeTree(trash).catch(() => undefined);
}
