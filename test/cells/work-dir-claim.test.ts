import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WorkDirInUseError } from "../../cell-agent/src/index.js";
import { claimWorkDir } from "../../cell-agent/src/agent/work-dir-claim.js";

// A cell removes what a killed run of it left in its work dir, so a second cell on the same
// work dir would remove the first one's running containers. The work dir is claimed instead.

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function workDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "diego-claim-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A long-lived process whose command is `name` (a link to sleep): what the claim looks at. */
async function processNamed(dir: string, name: string): Promise<ChildProcess> {
  const bin = path.join(dir, name);
  await symlink("/bin/sleep", bin);
  const child = spawn(bin, ["60"], { stdio: "ignore" });
  cleanup.push(async () => child.kill("SIGKILL"));
  await new Promise((r) => child.once("spawn", r));
  return child;
}

describe("a cell's claim on its work dir", () => {
  it("is taken in a fresh dir and given back on release", async () => {
    const dir = await workDir();
    const claim = await claimWorkDir(dir);
    expect((await readFile(path.join(dir, "cell.pid"), "utf8")).trim()).toBe(String(process.pid));
    await claim.release();
    await expect(readFile(path.join(dir, "cell.pid"), "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("is refused while a running diego process holds it, naming that process", async () => {
    const dir = await workDir();
    const other = await processNamed(await workDir(), "diego");
    await writeFile(path.join(dir, "cell.pid"), `${other.pid}\n`);
    const refused = await claimWorkDir(dir).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WorkDirInUseError);
    expect((refused as Error).message).toBe(
      `the cell work dir ${dir} is in use by a running cell (pid ${other.pid}); give this one another --cell-id or --data-dir`,
    );
    // Its claim is left as it was.
    expect((await readFile(path.join(dir, "cell.pid"), "utf8")).trim()).toBe(String(other.pid));
  });

  it("is taken over from a cell that died, even if its pid now belongs to another program", async () => {
    const dead = await workDir();
    const gone = spawn("/bin/true");
    await new Promise((r) => gone.once("exit", r));
    await writeFile(path.join(dead, "cell.pid"), `${gone.pid}\n`);
    await (await claimWorkDir(dead)).release();

    const reused = await workDir();
    const stranger = await processNamed(await workDir(), "not-a-cell");
    await writeFile(path.join(reused, "cell.pid"), `${stranger.pid}\n`);
    await (await claimWorkDir(reused)).release();
  });
});
