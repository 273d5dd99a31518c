import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { diegoCommandOf } from "../../../src/process/index.js";

// A cell starts by removing the containers a killed run of it left in its work dir. A second cell
// on the same work dir (the same --data-dir and --cell-id, e.g. `diego cell` beside `diego up`)
// would remove the first one's running containers, so the work dir is claimed with a pid file.

export class WorkDirInUseError extends Error {
  override readonly name = "WorkDirInUseError";
  constructor(
    readonly workDir: string,
    readonly ownerPid: number,
  ) {
    super(`the cell work dir ${workDir} is in use by a running cell (pid ${ownerPid}); give this one another --cell-id or --data-dir`);
  }
}

export interface WorkDirClaim {
  release(): Promise<void>;
}

const PID_FILE = "cell.pid";

/** Claims `workDir` for this process, unless a running diego process holds it. */
export async function claimWorkDir(workDir: string): Promise<WorkDirClaim> {
  // Only root passes: container files and runtime state live below (see the sandbox README).
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  await chmod(workDir, 0o700);
  const file = path.join(workDir, PID_FILE);
  const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
  // This process's own pid: a cell of it that was not stopped (tests restart cells in-process).
  if (Number.isInteger(owner) && owner > 1 && owner !== process.pid && (await diegoCommandOf(owner)) !== undefined) {
    throw new WorkDirInUseError(workDir, owner);
  }
  await writeFile(file, `${process.pid}\n`);
  return {
    async release() {
      const now = (await readFile(file, "utf8").catch(() => "")).trim();
      if (now === String(process.pid)) await rm(file, { force: true });
    },
  };
}
