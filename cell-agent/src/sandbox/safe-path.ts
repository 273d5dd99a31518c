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
