import { chmod, mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { diegoCommandOf } from "../../../src/process/index.js";
import { flock, LOCK_EX, LOCK_NB } from "../libc/index.js";

// A cell starts by removing the containers a killed run of it left in its work dir. A second cell
// on the same work dir (the same --data-dir and --cell-id, e.g. `diego cell` beside `diego up`)
// would remove the first one's running containers, so the work dir is claimed: an exclusive
// flock(2) on the dir, held for the cell's life. The kernel decides between two cells started
// together (a pid file read, checked and written leaves both a window) and drops the lock when
// its holder dies, however it dies. cell.pid only tells people which process holds it.

export class WorkDirInUseError extends Error {
  override readonly name = "WorkDirInUseError";
  constructor(
    readonly workDir: string,
    readonly ownerPid: number | undefined,
  ) {
    const who = ownerPid === undefined ? "another running cell" : `a running cell (pid ${ownerPid})`;
    super(`the cell work dir ${workDir} is in use by ${who}; give this one another --cell-id or --data-dir`);
  }
}

export interface WorkDirClaim {
  release(): Promise<void>;
}

const PID_FILE = "cell.pid";

/** Claims `workDir` for this process, unless another process (or claim) holds it. */
export async function claimWorkDir(workDir: string): Promise<WorkDirClaim> {
  // Only root passes: container files and runtime state live below (see the sandbox README).
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  await chmod(workDir, 0o700);
  const dir = await open(workDir, "r");
  let held: boolean;
  try {
    held = flock(dir.fd, LOCK_EX | LOCK_NB);
  } catch (err) {
    await dir.close();
    throw err;
  }
  const file = path.join(workDir, PID_FILE);
  if (!held) {
    const owner = (await lockHolder(dir)) ?? (await pidIn(file));
    await dir.close();
    throw new WorkDirInUseError(workDir, owner);
  }
  // Written whole, then renamed: a reader never sees it half written.
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${process.pid}\n`);
  await rename(temp, file);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await rm(file, { force: true });
      await dir.close(); // closing the only descriptor drops the lock
    },
  };
}

/** The pid the kernel names as holding a flock on this file (/proc/locks), if any. */
async function lockHolder(handle: FileHandle): Promise<number | undefined> {
  const { ino } = await handle.stat();
  const locks = await readFile("/proc/locks", "utf8").catch(() => "");
  // "1: FLOCK  ADVISORY  WRITE 4242 00:2a:1234567 0 EOF"; a waiter's line has "->" after the number.
  for (const line of locks.split("\n")) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+\S+\s+(-?\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m && Number(m[2]) === ino && Number(m[1]) > 0) return Number(m[1]);
  }
  return undefined;
}

async function pidIn(file: string): Promise<number | undefined> {
  const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
