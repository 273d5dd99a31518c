import { constants } from "node:fs";
import { lstat, open, readlink, type FileHandle } from "node:fs/promises";

// Reads files of a running container from the host. The container controls its filesystem:
// any component of a path may be a symlink to a host path (/etc/shadow), and a process may swap
// a directory for a symlink while we walk. So the walk never lets the kernel follow a symlink:
// it opens one component at a time relative to an open directory (through /proc/self/fd/N,
// Node's stand-in for openat) with O_NOFOLLOW, and resolves symlinks itself as if the
// container's root were "/" (like chroot). ".." never climbs above the root.

const MAX_SYMLINKS = 40;
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

export class ContainerFileError extends Error {
  constructor(
    readonly containerPath: string,
    reason: string,
  ) {
    super(`${containerPath}: ${reason}`);
    this.name = "ContainerFileError";
  }
}

/** Opens a regular file of the container for reading. Rejects for anything else. */
export async function openContainerFile(rootfsPath: string, containerPath: string): Promise<FileHandle> {
  const stack: FileHandle[] = [await open(rootfsPath, O_RDONLY | O_DIRECTORY)];
  const closeAll = async (): Promise<void> => {
    await Promise.all(stack.splice(0).map((h) => h.close().catch(() => undefined)));
  };
  try {
    const todo = components(containerPath);
    let symlinks = 0;
    while (todo.length > 0) {
      const name = todo.shift()!;
      if (name === "..") {
        if (stack.length > 1) await stack.pop()!.close();
        continue;
      }
      const last = todo.length === 0;
      const entry = `/proc/self/fd/${stack[stack.length - 1]!.fd}/${name}`;
      const handle = await openEntry(entry, last);
      if (handle) {
        if (!last) stack.push(handle);
        else return await asRegularFile(handle, containerPath, closeAll);
        continue;
      }
      // A symlink: splice its target in front of the rest, from the root if absolute.
      if (++symlinks > MAX_SYMLINKS) throw new ContainerFileError(containerPath, "too many levels of symbolic links");
      const target = await readlink(entry);
      if (target.startsWith("/")) {
        await Promise.all(stack.splice(1).map((h) => h.close()));
      }
      todo.unshift(...components(target));
    }
    throw new ContainerFileError(containerPath, "is a directory");
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Opens one directory entry without following it; undefined when it is a symlink. */
async function openEntry(entry: string, last: boolean): Promise<FileHandle | undefined> {
  // O_NONBLOCK: opening a FIFO the container planted must not hang the cell.
  const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (last ? 0 : O_DIRECTORY);
  try {
    return await open(entry, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === "ELOOP" || code === "ENOTDIR") && (await lstat(entry)).isSymbolicLink()) return undefined;
    throw err;
  }
}

async function asRegularFile(handle: FileHandle, containerPath: string, closeAll: () => Promise<void>): Promise<FileHandle> {
  await closeAll();
  if ((await handle.stat()).isFile()) return handle;
  await handle.close();
  throw new ContainerFileError(containerPath, "not a regular file");
}

/** Path components, "." dropped; relative paths are taken from the container's root. */
function components(p: string): string[] {
  return p.split("/").filter((c) => c !== "" && c !== ".");
}

/** Reads at most maxBytes from the start of a container file. */
export async function readContainerFileHead(rootfsPath: string, containerPath: string, maxBytes: number): Promise<Buffer> {
  const handle = await openContainerFile(rootfsPath, containerPath);
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
