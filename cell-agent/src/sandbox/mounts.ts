import { chown, mkdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { writeDiskImage, type DiskTemplate } from "./disk-templates.js";
import { SandboxError } from "./errors.js";
import { hostHelper, MNT_DETACH, MS_NOATIME } from "./host-helper.js";

// Root filesystem mounts go through the host helper (mount(2) without an exec per call).
// The kernel takes mount options from one page; leave room for upper/work dirs.
const MAX_LOWERDIR_CHARS = 3000;

export interface RootfsMountPlan {
  /** Read-only layers, lowest first. */
  lowers: string[];
  /** Where the upper and work dirs are created (inside disk when a disk image is used). */
  upper: string;
  work: string;
  /** Host uid/gid that owns the upper dir (container root). */
  owner: number;
  /** Overlay mount point (the container's rootfs). */
  target: string;
  /** Scratch dir for short layer links when the option string would be too long. */
  linkDir: string;
  /** Sized ext4 image: written from template to image and loop-mounted at mountPoint. */
  disk?: { template: DiskTemplate; image: string; mountPoint: string };
}

/** Mounts the disk image (if any) and the overlay at plan.target; the layers are never written. */
export async function mountRootfs(plan: RootfsMountPlan): Promise<void> {
  const helper = hostHelper();
  if (plan.disk) {
    await writeDiskImage(plan.disk.image, plan.disk.template);
    await helper.loopMount(plan.disk.image, plan.disk.mountPoint, "ext4", MS_NOATIME, "");
  }
  await Promise.all([mkdir(plan.upper, { mode: 0o755 }), mkdir(plan.work)]);
  if (plan.owner !== 0) await chown(plan.upper, plan.owner, plan.owner);
  // overlayfs lists lowerdirs top-most first.
  const topFirst = [...plan.lowers].reverse();
  let lowerdir = topFirst.join(":");
  let cwd = "";
  if (lowerdir.length > MAX_LOWERDIR_CHARS) {
    // Relative lowerdir names resolve against the mounter's cwd, keeping the option string short.
    await mkdir(plan.linkDir, { recursive: true });
    await Promise.all(topFirst.map((l, i) => symlink(l, path.join(plan.linkDir, String(i)))));
    lowerdir = topFirst.map((_, i) => String(i)).join(":");
    cwd = plan.linkDir;
  }
  // volatile: the upper dir is thrown away with the container, so skip syncfs on it.
  const options = `lowerdir=${lowerdir},upperdir=${plan.upper},workdir=${plan.work},volatile`;
  await helper.mount("overlay", plan.target, "overlay", 0, options, cwd);
}

/** Unmounts targets in order; true when every unmount succeeded. */
export async function unmountAll(targets: string[]): Promise<boolean> {
  let ok = true;
  for (const t of targets) ok = (await hostHelper().umount(t).then(() => true, () => false)) && ok;
  return ok;
}

/**
 * Unmounts target if something is mounted there; a lazy detach when busy. Never throws for
 * "not mounted".
 */
export async function unmountIfMounted(target: string): Promise<void> {
  const helper = hostHelper();
  const first = await helper.umount(target).then(() => undefined, (err: unknown) => err);
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
