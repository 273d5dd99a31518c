import { constants } from "node:fs";
import { open, opendir, rmdir, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { entryOf } from "./rootfs-file.js";

// Recursive delete of a tree a container may have written (its overlay upper dir), without
// ever resolving a path through it. rm -r by path (Node's fs.rm, rimraf) lists `dir` and then
// unlinks `dir/name`: swap `dir` for a symlink between the two and it deletes host files. Here
// every operation is relative to a directory fd the walk holds (through /proc/self/fd/N),
// unlink/rmdir never follow a symlink in the last component, a directory is entered only
// through open(O_DIRECTORY|O_NOFOLLOW) and only on the tree's own filesystem.

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const O_PATH = 0o10000000;
const FILE_BATCH = 64;
// Only a live attacker makes an entry change between two looks; it cannot win 50 coin flips in a row.
const MAX_RETRIES = 50;

export class RemoveTreeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RemoveTreeError";
  }
}

/** Removes target and everything under it. A missing target is not an error. */
export async function removeTree(target: string): Promise<void> {
  const parent = await open(path.dirname(path.resolve(target)), O_PATH | O_DIRECTORY);
  try {
    const dev = (await parent.stat()).dev;
    await removeEntry(parent, path.basename(target), dev);
  } finally {
    await parent.close();
  }
}

/** Removes one entry of an open directory, whatever it is (or becomes) meanwhile. */
async function removeEntry(dir: FileHandle, name: string, dev: number): Promise<void> {
  for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
    const gone = await unlink(entryOf(dir, name)).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return true;
        if (err.code === "EISDIR" || err.code === "EPERM") return false;
        throw err;
      },
    );
    if (gone || (await removeDirectory(dir, name, dev))) return;
  }
  throw new RemoveTreeError(`cannot remove ${name}: it keeps changing`);
}

/** Empties and removes directory `name`; false when it turned out not to be one (retry). */
async function removeDirectory(parent: FileHandle, name: string, dev: number): Promise<boolean> {
  const entry = entryOf(parent, name);
  let dir: FileHandle;
  try {
    dir = await open(entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return true;
    if (code === "ENOTDIR" || code === "ELOOP") return false;
    throw err;
  }
  try {
    if ((await dir.stat()).dev !== dev) throw new RemoveTreeError(`not removing ${name}: another filesystem is mounted there`);
    await emptyDirectory(dir, dev);
  } finally {
    await dir.close();
  }
  return rmdir(entry).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return true;
      // Refilled or swapped meanwhile: the caller looks again.
      if (err.code === "ENOTEMPTY" || err.code === "EEXIST" || err.code === "ENOTDIR") return false;
      throw err;
    },
  );
}

async function emptyDirectory(dir: FileHandle, dev: number): Promise<void> {
  // The listing opens the fd's own inode again (a magic link, not a path lookup).
  const listing = await opendir(`/proc/self/fd/${dir.fd}`);
  const files: string[] = [];
  const dirs: string[] = [];
  for await (const dirent of listing) (dirent.isDirectory() ? dirs : files).push(dirent.name);
  for (let i = 0; i < files.length; i += FILE_BATCH) {
    await Promise.all(files.slice(i, i + FILE_BATCH).map((f) => removeEntry(dir, f, dev)));
  }
  for (const d of dirs) await removeEntry(dir, d, dev);
}
