import { constants, type Stats } from "node:fs";
import { lchown, mkdir, open, readlink, type FileHandle } from "node:fs/promises";
import path from "node:path";

// Host-side access to a container's root filesystem. The container controls every path in it:
// any component may be a symlink to a host path (/etc/shadow), and a running process may swap
// a directory for a symlink (renameat2 RENAME_EXCHANGE) while we walk. So no path under the
// root is ever handed to the kernel whole. Like openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS),
// which Node cannot call: the walk opens one component at a time with O_PATH|O_NOFOLLOW
// relative to the directory fd it holds (through /proc/self/fd/N, Node's stand-in for openat),
// fstat()s what it got, and resolves symlinks itself with the container's root as "/".
// ".." never climbs above the root (it pops the walk's own stack of fds). A file is opened for
// reading only by re-opening the O_PATH fd (the same inode, not a path), and only once fstat
// said it is a regular file: a planted FIFO or device node is never opened.

const MAX_SYMLINKS = 40;
const O_PATH = 0o10000000; // Linux; not in fs.constants
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

export class RootfsPathError extends Error {
  constructor(
    readonly containerPath: string,
    reason: string,
  ) {
    super(`${containerPath}: ${reason}`);
    this.name = "RootfsPathError";
  }
}

/** The path of entry `name` in the directory behind an open handle; resolved by the kernel from the fd, not a path. */
export function entryOf(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/** Opens an O_PATH handle on the root itself (a path the cell made, not the container). */
export function openRoot(rootfs: string): Promise<FileHandle> {
  return open(rootfs, O_PATH | O_DIRECTORY);
}

interface Found {
  handle: FileHandle;
  stats: Stats;
}

/**
 * Resolves containerPath inside the root to an O_PATH handle on its last component (a
 * directory fd per component on the way, symlinks resolved within the root).
 */
async function resolveInRoot(rootfs: string, containerPath: string): Promise<Found> {
  const stack: FileHandle[] = [await openRoot(rootfs)];
  const closeAll = (keep?: FileHandle): Promise<unknown> =>
    Promise.all(stack.splice(0).filter((h) => h !== keep).map((h) => h.close().catch(() => undefined)));
  try {
    const todo = components(containerPath);
    let symlinks = 0;
    let current: Found = { handle: stack[0]!, stats: await stack[0]!.stat() };
    while (todo.length > 0) {
      const name = todo.shift()!;
      if (name === "..") {
        if (stack.length > 1) await stack.pop()!.close();
        current = { handle: stack[stack.length - 1]!, stats: await stack[stack.length - 1]!.stat() };
        continue;
      }
      if (!current.stats.isDirectory()) throw new RootfsPathError(containerPath, "not a directory");
      const entry = entryOf(current.handle, name);
      const handle = await open(entry, O_PATH | O_NOFOLLOW);
      const stats = await handle.stat().catch(async (err: unknown) => {
        await handle.close();
        throw err;
      });
      if (stats.isSymbolicLink()) {
        await handle.close();
        if (++symlinks > MAX_SYMLINKS) throw new RootfsPathError(containerPath, "too many levels of symbolic links");
        // Whatever the entry holds by now, its text is resolved inside the root like any path.
        const target = await readlink(entry);
        if (target.startsWith("/")) await Promise.all(stack.splice(1).map((h) => h.close()));
        current = { handle: stack[stack.length - 1]!, stats: await stack[stack.length - 1]!.stat() };
        todo.unshift(...components(target));
        continue;
      }
      stack.push(handle);
      current = { handle, stats };
    }
    await closeAll(current.handle);
    return current;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Opens a regular file of the container for reading. Rejects for anything else. */
export async function openFileInRoot(rootfs: string, containerPath: string): Promise<FileHandle> {
  const found = await resolveInRoot(rootfs, containerPath);
  try {
    if (!found.stats.isFile()) {
      throw new RootfsPathError(containerPath, found.stats.isDirectory() ? "is a directory" : "not a regular file");
    }
    // Re-opening the O_PATH fd through its magic link reaches that very inode, whatever the
    // entry holds now. O_NONBLOCK in case an inode were ever a FIFO after all.
    const file = await open(`/proc/self/fd/${found.handle.fd}`, O_RDONLY | O_NONBLOCK);
    const st = await file.stat();
    if (st.ino !== found.stats.ino || st.dev !== found.stats.dev || !st.isFile()) {
      await file.close();
      throw new RootfsPathError(containerPath, "changed while opened");
    }
    return file;
  } finally {
    await found.handle.close();
  }
}

/** Reads at most maxBytes from the start of a regular file of the container. */
export async function readFileHeadInRoot(rootfs: string, containerPath: string, maxBytes: number): Promise<Buffer> {
  const handle = await openFileInRoot(rootfs, containerPath);
  try {
    const buf = Buffer.alloc(maxBytes);
    let filled = 0;
    while (filled < maxBytes) {
      const { bytesRead } = await handle.read(buf, filled, maxBytes - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/**
 * mkdir -p of containerPath inside the root, new directories owned by owner (host ids). Walks
 * by fd like the readers; stops silently at a symlink or a non-directory (the runtime then
 * reports the missing directory itself).
 */
export async function mkdirInRoot(rootfs: string, containerPath: string, owner: number): Promise<void> {
  let dir = await openRoot(rootfs);
  try {
    for (const name of components(path.posix.normalize(`/${containerPath}`))) {
      const entry = entryOf(dir, name);
      // mkdir and lchown never follow a symlink in the last component.
      const created = await mkdir(entry, { mode: 0o755 }).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === "EEXIST") return false;
          throw err;
        },
      );
      if (created) await lchown(entry, owner, owner);
      let next: FileHandle;
      try {
        next = await open(entry, O_PATH | O_NOFOLLOW | O_DIRECTORY);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTDIR" || code === "ELOOP") return;
        throw err;
      }
      await dir.close();
      dir = next;
    }
  } finally {
    await dir.close().catch(() => undefined);
  }
}

/** Path components, "." dropped; relative paths are taken from the container's root. */
function components(p: string): string[] {
  return p.split("/").filter((c) => c !== "" && c !== ".");
}
