import { chown, mkdir, readFile, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { writeDiskImage, type DiskTemplate } from "./disk-templates.js";
import { SandboxError } from "./errors.js";
import {
  hostHelper,
  MNT_DETACH,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_RDONLY,
  MS_NOATIME,
  MS_NODEV,
  MS_NOSUID,
  type Idmap,
} from "./host-helper.js";
import { createFileInRootfs, mkdirInRootfs } from "./safe-path.js";
import type { BindMount } from "./types.js";

// Root filesystem mounts go through the host helper (mount(2) without an exec per call).
// Every name in the overlay's options is relative to the bundle (the helper mounts from there),
// so the container's /proc/self/mountinfo shows "lowerdir=lower/0,upperdir=fs/upper" and no
// host path.

const SAFE_ATTRS = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

export interface RootfsMountPlan {
  /** The bundle dir: every other path here is inside it. */
  bundle: string;
  /** Read-only layers, lowest first. */
  layers: string[];
  /** User-namespaced container: each layer is an idmapped mount (ids 0.. seen as hostId..). */
  idmap?: Idmap;
  /** Host uid/gid that owns the upper dir (container root). */
  owner: number;
  /** Sized ext4 image: written from template and loop-mounted as the upper/work filesystem. */
  disk?: DiskTemplate;
}

/** Where a plan's pieces live inside the bundle. */
export function bundlePaths(bundle: string, diskMb: number) {
  const upperFs = diskMb > 0 ? "disk" : "fs";
  return {
    rootfs: path.join(bundle, "rootfs"),
    upperFs: path.join(bundle, upperFs),
    upperRel: `${upperFs}/upper`,
    workRel: `${upperFs}/work`,
    image: path.join(bundle, "disk.img"),
    lowers: path.join(bundle, "lower"),
  };
}

/**
 * Mounts the upper filesystem (nosuid,nodev) and the overlay (nosuid,nodev) at rootfs; the layers
 * are never written. Unprivileged: each layer is an idmapped read-only clone, so its files show
 * as owned by the container's ids without any copy, and stay root-owned on disk.
 */
export async function mountRootfs(plan: RootfsMountPlan): Promise<void> {
  const helper = hostHelper();
  const p = bundlePaths(plan.bundle, plan.disk ? 1 : 0);
  await Promise.all([mkdir(p.rootfs), mkdir(p.upperFs), mkdir(p.lowers)]);
  if (plan.disk) {
    await writeDiskImage(p.image, plan.disk);
    await helper.loopMount(p.image, p.upperFs, "ext4", MS_NOATIME | MS_NOSUID | MS_NODEV, "");
  } else {
    // The upper dir sits on the host's filesystem: a nosuid,nodev bind of its parent onto itself.
    await helper.cloneMount(p.upperFs, { path: p.upperFs }, { attrs: SAFE_ATTRS });
  }
  const upper = path.join(plan.bundle, p.upperRel);
  await Promise.all([mkdir(upper, { mode: 0o755 }), mkdir(path.join(plan.bundle, p.workRel))]);
  if (plan.owner !== 0) await chown(upper, plan.owner, plan.owner);
  const lowerNames = plan.layers.map((_, i) => `lower/${i}`);
  await Promise.all(plan.layers.map((layer, i) => attachLower(path.resolve(layer), path.join(plan.bundle, lowerNames[i]!), plan.idmap)));
  try {
    // overlayfs lists lowerdirs top-most first. volatile: the upper dies with the container.
    const lowerdir = [...lowerNames].reverse().join(":");
    const options = `lowerdir=${lowerdir},upperdir=${p.upperRel},workdir=${p.workRel},volatile`;
    await helper.mount("overlay", p.rootfs, "overlay", MS_NOSUID | MS_NODEV, options, plan.bundle);
  } finally {
    // The overlay holds its own private clones of its layers: the attach points can go.
    if (plan.idmap) await Promise.all(lowerNames.map((n) => helper.umount(path.join(plan.bundle, n), MNT_DETACH).catch(() => undefined)));
  }
}

async function attachLower(layer: string, at: string, idmap: Idmap | undefined): Promise<void> {
  if (!idmap) return symlink(layer, at);
  await mkdir(at);
  await hostHelper().cloneMount(layer, { path: at }, { attrs: MOUNT_ATTR_RDONLY | SAFE_ATTRS, idmap });
}

/** Mounts a host path at a destination inside a mounted rootfs, never following the image's symlinks. */
export async function bindIntoRootfs(rootfs: string, mount: BindMount, owner: number): Promise<void> {
  const st = await stat(mount.source);
  const parts = path.posix.normalize(`/${mount.destination}`).split("/").filter(Boolean);
  if (parts.length === 0) throw new SandboxError(`bind mount destination ${mount.destination} is the root`);
  const rel = parts.join("/");
  await mkdirInRootfs(rootfs, st.isDirectory() ? rel : parts.slice(0, -1).join("/"), owner);
  if (!st.isDirectory()) await createFileInRootfs(rootfs, rel, owner);
  const attrs = (mount.readonly ? MOUNT_ATTR_RDONLY : 0) | SAFE_ATTRS;
  await hostHelper().cloneMount(mount.source, { root: rootfs, rel }, { attrs, recursive: true });
}

/** Unmounts targets in order; true when every unmount succeeded. */
export async function unmountAll(targets: string[]): Promise<boolean> {
  let ok = true;
  for (const t of targets) ok = (await hostHelper().umount(t).then(() => true, () => false)) && ok;
  return ok;
}

/**
 * Unmounts target if something is mounted there; a lazy detach when busy (or at once when
 * flags is MNT_DETACH: the whole tree below goes too). Never throws for "not mounted".
 */
export async function unmountIfMounted(target: string, flags = 0): Promise<void> {
  const helper = hostHelper();
  const first = await helper.umount(target, flags).then(() => undefined, (err: unknown) => err);
  if (!first || !(await isMountPoint(target))) return;
  const lazy = await helper.umount(target, MNT_DETACH).then(() => undefined, (err: unknown) => err);
  if (lazy && (await isMountPoint(target))) throw new SandboxError(`cannot unmount ${target}: ${String(first)}`);
}

/** Mount points under prefix (deepest first), read from the host mount table. */
export async function mountPointsUnder(prefix: string): Promise<string[]> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  const withSlash = prefix.endsWith("/") ? prefix : `${prefix}/`;
  return table
    .split("\n")
    .map((line) => unescapeMountPath(line.split(" ")[4] ?? ""))
    .filter((p) => p.startsWith(withSlash))
    .sort((a, b) => b.length - a.length);
}

async function isMountPoint(target: string): Promise<boolean> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  return table.split("\n").some((line) => unescapeMountPath(line.split(" ")[4] ?? "") === target);
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
