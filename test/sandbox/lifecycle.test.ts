import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { access, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { cellKey, createSandboxRuntime, parentCgroup, RuntimeUnavailableError } from "../../cell-agent/src/sandbox/index.js";
import { collect, mountsUnder, NO_LIMITS, setupFixture, sh, uniqueId, type Fixture } from "./fixtures/sandbox-fixture.js";

let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture();
});
afterAll(async () => {
  await fx.cleanup();
});

const CONTROLLERS = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices", "unified"];

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

async function cgroupsLeft(workDir: string, id: string): Promise<string[]> {
  const rel = parentCgroup(cellKey(workDir), id);
  const dirs = CONTROLLERS.map((c) => `/sys/fs/cgroup/${c}${rel}`);
  const left = await Promise.all(dirs.map(async (d) => ((await exists(d)) ? d : undefined)));
  return left.filter((d): d is string => d !== undefined);
}

async function runtimeStateIds(workDir: string): Promise<string[]> {
  return readdir(path.join(workDir, "state")).catch(() => []);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("destroy", () => {
  for (const mode of ["run", "runOnce", "never started"] as const) {
    it(`removes the container, mounts, cgroups and directories (${mode})`, async () => {
      const sb = await fx.sandbox({ privileged: false, limits: { ...NO_LIMITS, memoryMb: 64, diskMb: 16, pids: 50 } });
      const bundle = path.dirname(sb.rootfsPath);
      expect(await mountsUnder(bundle)).toHaveLength(2); // overlay + disk image
      expect(await cgroupsLeft(fx.workDir, sb.id)).not.toHaveLength(0);
      if (mode === "run") await sb.run(sh("echo hi > /tmp/x"), collect().io);
      if (mode === "runOnce") await sb.runOnce!(sh("echo hi > /tmp/x"), collect().io);
      await sb.destroy();
      expect(await mountsUnder(bundle)).toEqual([]);
      expect(await exists(bundle)).toBe(false);
      expect(await cgroupsLeft(fx.workDir, sb.id)).toEqual([]);
      expect(await runtimeStateIds(fx.workDir)).not.toContain(sb.id);
      await sb.destroy(); // idempotent
    });
  }

  it("kills running processes", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    const running = sb.run(sh("echo up; sleep 100"), c.io);
    await c.waitFor("up");
    await sb.destroy();
    expect((await running).exitCode).toBe(137);
    expect(await runtimeStateIds(fx.workDir)).not.toContain(sb.id);
  });

  it("reports the container stopped before it removes the filesystem (the cell frees the slot then)", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    const running = sb.run(sh("echo up; sleep 100"), c.io);
    await c.waitFor("up");
    const bundle = path.dirname(sb.rootfsPath);
    const atStop: boolean[] = [];
    await sb.destroy({ onStopped: () => atStop.push(existsSync(bundle)) });
    // Called once, while the bundle was still there; the process was killed and all is gone now.
    expect(atStop).toEqual([true]);
    expect((await running).exitCode).toBe(137);
    expect(await exists(bundle)).toBe(false);
    expect(await runtimeStateIds(fx.workDir)).not.toContain(sb.id);
    let again = false;
    await sb.destroy({ onStopped: () => (again = true) });
    expect(again).toBe(false);
  });

  it("refuses a second sandbox with the same id and keeps the first intact", async () => {
    const id = uniqueId();
    const first = await fx.sandbox({ id });
    await expect(fx.sandbox({ id })).rejects.toThrow(/already exists/);
    const c = collect();
    expect((await first.run(sh("echo alive"), c.io)).exitCode).toBe(0);
    expect(c.stdout()).toBe("alive\n");
  });
});

describe("runtime setup", () => {
  it("reports a missing runtime binary clearly", async () => {
    const rt = createSandboxRuntime({ runtime: "runc", binary: "/nonexistent/runc", workDir: path.join(fx.dir, "no-runc") });
    await expect(rt.create({ id: uniqueId(), layers: [fx.rootfs], env: [], privileged: true, limits: NO_LIMITS })).rejects.toThrow(
      RuntimeUnavailableError,
    );
  });
});

describe("cleanupStale", () => {
  it("removes containers, mounts and cgroups left by a SIGKILLed cell", async () => {
    const workDir = path.join(fx.dir, "crashed-cell");
    const script = fileURLToPath(new URL("./fixtures/crashing-cell.ts", import.meta.url));
    // Its own id base: the ranges it releases are not claimed again by other tests meanwhile.
    const child = spawn(process.execPath, ["--import", "tsx", script, workDir, fx.rootfs, "runc", "40000000"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    onTestFinished(async () => {
      child.kill("SIGKILL");
      await createSandboxRuntime({ runtime: "runc", workDir }).cleanupStale();
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (c: Buffer) => c.toString().includes("all-started") && resolve());
      child.on("exit", (code) => reject(new Error(`crashing cell exited early (${code})`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));

    const ids = ["stale-exec", "stale-once", "stale-priv"];
    const containersDir = path.join(workDir, "containers");
    expect((await runtimeStateIds(workDir)).sort()).toEqual(ids.sort());
    expect((await mountsUnder(containersDir)).length).toBeGreaterThanOrEqual(5);
    const initPids = await Promise.all(
      ids.map(async (id) => {
        const { readFile } = await import("node:fs/promises");
        const file = id === "stale-once" ? "run-1.pid" : "init.pid";
        return Number(await readFile(path.join(containersDir, id, file), "utf8"));
      }),
    );
    expect(initPids.every(processAlive)).toBe(true);
    // The unprivileged ones hold id ranges registered in /etc/subuid.
    const { readFile } = await import("node:fs/promises");
    const subuids = async (): Promise<string> => readFile("/etc/subuid", "utf8").catch(() => "");
    const ranges = await Promise.all(
      ["stale-exec", "stale-once"].map(async (id) => Number(await readFile(path.join(containersDir, id, "subids"), "utf8"))),
    );
    for (const start of ranges) expect(await subuids()).toContain(`:${start}:65536\n`);

    const rt = createSandboxRuntime({ runtime: "runc", workDir });
    await rt.cleanupStale();
    for (const start of ranges) expect(await subuids()).not.toContain(`:${start}:65536\n`); // released
    expect(await runtimeStateIds(workDir)).toEqual([]);
    expect(await mountsUnder(containersDir)).toEqual([]);
    expect(await readdir(containersDir)).toEqual([]);
    for (const id of ids) expect(await cgroupsLeft(workDir, id)).toEqual([]);
    expect(initPids.some(processAlive)).toBe(false);

    // The cell works again afterwards, with a previously used id.
    const sb = await rt.create({ id: "stale-exec", layers: [fx.rootfs], env: [], privileged: false, limits: NO_LIMITS });
    const c = collect();
    expect((await sb.run(sh("echo reborn"), c.io)).exitCode).toBe(0);
    expect(c.stdout()).toBe("reborn\n");
    await sb.destroy();
    await rt.cleanupStale(); // nothing left: a no-op
  });
});
