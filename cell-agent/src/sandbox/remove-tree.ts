import { constants } from "node:fs";
import { open, opendir, rmdir, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { entryOf } from "./rootfs-file.js";

// Recursive delete of a tree a container may have written (its overlay upper dir), without
// ever resolving a path through it. rm -r by path (Node's fs.rm, rimraf) lists `dir` and then
// unlinks `dir/name`: swap `dir` for a symlink between the two and it deletes host files. Here
// every operation is relative to a directory fd the walk holds (through /proc/self/fd/N),
// unlink/rmdir never follow a symlink in the last component, a directory is entered only
// through open(O_DIRECTORY|O_NOFOLLOW) and only on the tree's own filesystem. The walk holds
// two fds at most, whatever the depth: it climbs back through "..", which is never a symlink,
// and checks that it got back to the very directory it came from.

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const O_PATH = 0o10000000;
const FILE_BATCH = 64;
// Only a live attacker makes entries change between two looks; each retry is a coin flip it
// must win again, so this bound is never reached by chance.
const MAX_RETRIES = 200;

export class RemoveTreeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RemoveTreeError";
  }
}

/** A directory being emptied: who it is, its name in its parent, subdirectories left to do. */
interface Frame {
  dir: FileHandle;
  ino: number;
  name: string;
  pending: string[];
}

/** Removes target and everything under it. A missing target is not an error. */
export async function removeTree(target: string): Promise<void> {
  const parent = await open(path.dirname(path.resolve(target)), O_PATH | O_DIRECTORY);
  const budget = { retries: MAX_RETRIES };
  try {
    const dev = (await parent.stat()).dev;
    const name = path.basename(target);
    while ((await unlinkEntry(parent, name)) === "directory") {
      if (await removeDirectory(parent, name, dev, budget)) return;
      spend(budget, name);
    }
  } finally {
    await parent.close();
  }
}

/** Unlinks a non-directory entry; tells when the entry is (now) a directory instead. */
async function unlinkEntry(dir: FileHandle, name: string): Promise<"gone" | "directory"> {
  try {
    await unlink(entryOf(dir, name));
    return "gone";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "gone";
    if (code === "EISDIR" || code === "EPERM") return "directory";
    throw err;
  }
}

/** Opens subdirectory `name` of dir; undefined when it is not (or no longer) a directory. */
async function openDirectory(dir: FileHandle, name: string): Promise<FileHandle | undefined> {
  try {
    return await open(entryOf(dir, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") return undefined;
    throw err;
  }
}

/**
 * Empties and removes directory `name` of parent, depth first. False when it was not a
 * directory after all (the caller looks again).
 */
async function removeDirectory(parent: FileHandle, name: string, dev: number, budget: { retries: number }): Promise<boolean> {
  const top = await openDirectory(parent, name);
  if (!top) return false;
  const above: Frame[] = [];
  let frame: Frame;
  try {
    frame = await enter(top, name, dev);
  } catch (err) {
    await top.close();
    throw err;
  }
  try {
    for (;;) {
      const next = frame.pending.pop();
      if (next !== undefined) {
        const child = await openDirectory(frame.dir, next);
        if (!child) {
          // Swapped for a file or a symlink since the listing: unlink it like one.
          if ((await unlinkEntry(frame.dir, next)) === "directory") frame.pending.push(next), spend(budget, next);
          continue;
        }
        // Only the directory being emptied stays open: its parent is found again through "..".
        await frame.dir.close();
        above.push(frame);
        frame = await enter(child, next, dev).catch(async (err: unknown) => {
          await child.close();
          throw err;
        });
        continue;
      }
      const parentFrame = above.pop();
      if (!parentFrame) break;
      await climb(frame, parentFrame);
      if (!(await removeEmpty(parentFrame.dir, frame.name))) parentFrame.pending.push(frame.name), spend(budget, frame.name);
      frame = parentFrame;
    }
  } finally {
    await Promise.all([frame!, ...above].map((f) => f.dir.close().catch(() => undefined)));
  }
  return removeEmpty(parent, name);
}

/** Lists an opened directory, unlinks its files and returns it with its subdirectories to do. */
async function enter(dir: FileHandle, name: string, dev: number): Promise<Frame> {
  const st = await dir.stat();
  if (st.dev !== dev) throw new RemoveTreeError(`not removing ${name}: another filesystem is mounted there`);
  // The listing opens the fd's own inode again (a magic link, not a path lookup).
  const files: string[] = [];
  const pending: string[] = [];
  for await (const dirent of await opendir(`/proc/self/fd/${dir.fd}`)) (dirent.isDirectory() ? pending : files).push(dirent.name);
  for (let i = 0; i < files.length; i += FILE_BATCH) {
    const kinds = await Promise.all(files.slice(i, i + FILE_BATCH).map((f) => unlinkEntry(dir, f)));
    kinds.forEach((kind, j) => kind === "directory" && pending.push(files[i + j]!));
  }
  return { dir, ino: st.ino, name, pending };
}

/**
 * Steps from a finished directory back up to its parent through "..", and checks it arrived
 * where it came from (a live container could have moved the directory meanwhile). The parent
 * frame's fd was closed while below; it is replaced by the one opened here.
 */
async function climb(frame: Frame, parentFrame: Frame): Promise<void> {
  const up = await open(`/proc/self/fd/${frame.dir.fd}/..`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  await frame.dir.close();
  const st = await up.stat();
  await parentFrame.dir.close().catch(() => undefined);
  parentFrame.dir = up;
  if (st.ino !== parentFrame.ino) throw new RemoveTreeError(`${frame.name} was moved while being removed`);
}

/** rmdir of one name; false when it is not empty (or not a directory) any more. */
async function removeEmpty(dir: FileHandle, name: string): Promise<boolean> {
  try {
    await rmdir(entryOf(dir, name));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return true;
    if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR") return false;
    throw err;
  }
}

function spend(budget: { retries: number }, name: string): void {
  if (--budget.retries < 0) throw new RemoveTreeError(`cannot remove ${name}: it keeps changing`);
}
