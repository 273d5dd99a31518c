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

/** A long-lived process whose command is `name` (a link to sleep), holding no lock. */
async function processNamed(dir: string, name: string): Promise<ChildProcess> {
  const bin = path.join(dir, name);
  await symlink("/bin/sleep", bin);
  const child = spawn(bin, ["60"], { stdio: "ignore" });
  cleanup.push(async () => child.kill("SIGKILL"));
  await new Promise((r) => child.once("spawn", r));
  return child;
}

/** Another process holding the dir's lock as a cell does (util-linux flock), once it holds it. */
async function lockHolder(dir: string): Promise<ChildProcess> {
  const child = spawn("flock", ["--no-fork", "--nonblock", dir, "sh", "-c", "echo locked; exec sleep 60"], { stdio: ["ignore", "pipe", "inherit"] });
  cleanup.push(async () => child.kill("SIGKILL"));
  await new Promise((resolve, reject) => {
    child.stdout!.once("data", resolve);
    child.once("exit", (code) => reject(new Error(`flock exited with ${code}`)));
  });
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

  it("is refused while another process holds it, naming that process", async () => {
    const dir = await workDir();
    const other = await lockHolder(dir);
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

  it("is taken over at once from a holder killed with SIGKILL", async () => {
    const dir = await workDir();
    const holder = await lockHolder(dir);
    await writeFile(path.join(dir, "cell.pid"), `${holder.pid}\n`);
    await expect(claimWorkDir(dir)).rejects.toBeInstanceOf(WorkDirInUseError);
    const exited = new Promise((r) => holder.once("exit", r));
    holder.kill("SIGKILL");
    await exited;
    const claim = await claimWorkDir(dir);
    expect((await readFile(path.join(dir, "cell.pid"), "utf8")).trim()).toBe(String(process.pid));
    await claim.release();
  });

  it("goes to exactly one of two cells started together; the other is told who holds it", async () => {
    const dir = await workDir();
    const outcomes = await Promise.allSettled([claimWorkDir(dir), claimWorkDir(dir)]);
    const won = outcomes.filter((o) => o.status === "fulfilled");
    const lost = outcomes.filter((o) => o.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const refusal = (lost[0] as PromiseRejectedResult).reason as Error;
    expect(refusal).toBeInstanceOf(WorkDirInUseError);
    expect(refusal.message).toBe(
      `the cell work dir ${dir} is in use by a running cell (pid ${process.pid}); give this one another --cell-id or --data-dir`,
    );
    // Given back, it can be claimed again.
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof claimWorkDir>>>).value.release();
    await (await claimWorkDir(dir)).release();
  });

  it("goes to exactly one of three contenders started together, this process and two others", async () => {
    const dir = await workDir();
    const race = (): Promise<string> =>
      new Promise((resolve) => {
        const child = spawn("flock", ["--no-fork", "--nonblock", dir, "sh", "-c", "echo won; exec sleep 60"], { stdio: ["ignore", "pipe", "ignore"] });
        cleanup.push(async () => child.kill("SIGKILL"));
        child.stdout.once("data", () => resolve("won"));
        child.once("exit", () => resolve("lost"));
      });
    // Our claim races two other processes for the same dir.
    const ours = claimWorkDir(dir).then(
      (claim) => (cleanup.push(() => claim.release()), "won"),
      () => "lost",
    );
    const [a, b, mine] = await Promise.all([race(), race(), ours]);
    expect([a, b, mine].filter((o) => o === "won")).toHaveLength(1);
  });
});
