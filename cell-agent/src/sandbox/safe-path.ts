import { constants } from "node:fs";
import { lchown, lstat, open } from "node:fs/promises";
import path from "node:path";
import { isCode } from "./errors.js";
import { mkdirInRoot, openFileInRoot } from "./rootfs-file.js";

// The container's root filesystem is image- and task-controlled: a symlink in it may point
// anywhere on the host, and a running container may swap one in at any time. These helpers
// walk it by file descriptor (rootfs-file.ts) and never let the kernel follow one.

/**
 * Creates containerPath inside rootfs (like mkdir -p) owned by owner. Stops silently at a
 * symlink or a non-directory: the runtime then reports the missing directory itself.
 */
export function mkdirInRootfs(rootfs: string, containerPath: string, owner: number): Promise<void> {
  return mkdirInRoot(rootfs, containerPath, owner);
}

/**
 * Creates an empty file at containerPath unless something is there; its parents must be real
 * directories (used before any container process runs, so nothing can swap them meanwhile).
 */
export async function createFileInRootfs(rootfs: string, containerPath: string, owner: number): Promise<void> {
  const parts = path.posix.normalize(`/${containerPath}`).split("/").filter(Boolean);
  let parent = rootfs;
  for (const part of parts.slice(0, -1)) {
    parent = path.join(parent, part);
    const st = await lstat(parent).catch(() => undefined);
    if (!st?.isDirectory()) return; // the bind mount then fails on the missing destination
  }
  const target = path.join(parent, parts.at(-1) ?? "");
  try {
    const fh = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    await fh.close();
    await lchown(target, owner, owner);
  } catch (err) {
    if (!isCode(err, "EEXIST")) throw err;
  }
}

/**
 * Reads a small regular file inside rootfs, symlinks resolved within the rootfs; "" when
 * absent, not a regular file or too big.
 */
export async function readSmallFileInRootfs(rootfs: string, containerPath: string, maxBytes = 1 << 20): Promise<string> {
  let fh;
  try {
    fh = await openFileInRoot(rootfs, containerPath);
  } catch {
    return "";
  }
  try {
    if ((await fh.stat()).size > maxBytes) return "";
    const buf = Buffer.alloc(maxBytes);
    const { bytesRead } = await fh.read(buf, 0, maxBytes, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await fh.close();
  }
}
