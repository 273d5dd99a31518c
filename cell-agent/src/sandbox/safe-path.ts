import { constants } from "node:fs";
import { lchown, lstat, mkdir, open } from "node:fs/promises";
import path from "node:path";
import { isCode } from "./errors.js";

// The container's root filesystem is image-controlled: a symlink in it may point anywhere on
// the host. Host-side helpers here never follow one.

/**
 * Creates containerPath inside rootfs (like mkdir -p) owned by owner. Stops silently at a
 * symlink or a non-directory: the runtime then reports the missing directory itself.
 */
export async function mkdirInRootfs(rootfs: string, containerPath: string, owner: number): Promise<void> {
  const parts = path.posix.normalize(`/${containerPath}`).split("/").filter(Boolean);
  let current = rootfs;
  for (const part of parts) {
    current = path.join(current, part);
    try {
      const st = await lstat(current);
      if (!st.isDirectory()) return;
    } catch (err) {
      if (!isCode(err, "ENOENT")) throw err;
      await mkdir(current, { mode: 0o755 });
      await lchown(current, owner, owner);
    }
  }
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

/** Reads a small regular file inside rootfs; "" when absent, a symlink, special or too big. */
export async function readSmallFileInRootfs(rootfs: string, containerPath: string, maxBytes = 1 << 20): Promise<string> {
  const parts = path.posix.normalize(`/${containerPath}`).split("/").filter(Boolean);
  let current = rootfs;
  for (const [i, part] of parts.entries()) {
    current = path.join(current, part);
    try {
      const st = await lstat(current);
      const last = i === parts.length - 1;
      if (last ? !st.isFile() || st.size > maxBytes : !st.isDirectory()) return "";
    } catch {
      return "";
    }
  }
  // O_NOFOLLOW/O_NONBLOCK: a running container may swap the file for a symlink or FIFO meanwhile.
  const fh = await open(current, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) return "";
    const buf = Buffer.alloc(maxBytes);
    const { bytesRead } = await fh.read(buf, 0, maxBytes, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await fh.close();
  }
}
