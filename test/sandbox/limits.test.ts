import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cellKey, parentCgroup } from "../../cell-agent/src/sandbox/index.js";
import { collect, NO_LIMITS, setupFixture, sh, type Fixture } from "./fixtures/sandbox-fixture.js";

let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture();
});
afterAll(async () => {
  await fx.cleanup();
});

function cgroupFile(controller: string, id: string, file: string): string {
  return `/sys/fs/cgroup/${controller}${parentCgroup(cellKey(fx.workDir), id)}/${file}`;
}

const ALLOCATE_200MB = "head -c 200m /dev/zero | tail > /dev/null";

describe("resource limits", () => {
  it("kills a process over the memory limit and reports it as OOM (run)", async () => {
    const sb = await fx.sandbox({ limits: { ...NO_LIMITS, memoryMb: 32 } });
    expect(await readFile(cgroupFile("memory", sb.id, "memory.limit_in_bytes"), "utf8")).toBe(`${32 * 1024 * 1024}\n`);
    const res = await sb.run(sh(ALLOCATE_200MB), collect().io);
    expect(res).toEqual({ exitCode: 137, oomKilled: true });
    // A later well-behaved process is not blamed for the earlier kill.
    expect(await sb.run(sh("head -c 1m /dev/zero | tail > /dev/null"), collect().io)).toEqual({ exitCode: 0, oomKilled: false });
  });

  it("kills a process over the memory limit and reports it as OOM (runOnce)", async () => {
    const sb = await fx.sandbox({ limits: { ...NO_LIMITS, memoryMb: 32 }, privileged: false });
    expect(await sb.runOnce!(sh(ALLOCATE_200MB), collect().io)).toEqual({ exitCode: 137, oomKilled: true });
  });

  it("does not report OOM for a process killed otherwise", async () => {
    const sb = await fx.sandbox({ limits: { ...NO_LIMITS, memoryMb: 32 } });
    // The inner shell is not the container's PID 1, so SIGKILL from inside reaches it.
    expect(await sb.runOnce!(sh("sh -c 'kill -9 $$'; exit $?"), collect().io)).toEqual({ exitCode: 137, oomKilled: false });
  });

  it("shares one CPU by cpu_weight: 50 vs 100 gets about 1/3 vs 2/3", async () => {
    const light = await fx.sandbox({ limits: { ...NO_LIMITS, cpuWeight: 50 } });
    const heavy = await fx.sandbox({ limits: { ...NO_LIMITS, cpuWeight: 100 } });
    expect(await readFile(cgroupFile("cpu", light.id, "cpu.shares"), "utf8")).toBe("512\n");
    expect(await readFile(cgroupFile("cpu", heavy.id, "cpu.shares"), "utf8")).toBe("1024\n");
    const ac = new AbortController();
    const outs = [collect(), collect()];
    // Both busy loops pinned to CPU 0 so they must compete for it.
    const loops = [light, heavy].map((sb, i) =>
      sb.run(sh("echo spinning; exec taskset -c 0 sh -c 'while :; do :; done'"), outs[i]!.io, ac.signal),
    );
    await Promise.all(outs.map((o) => o.waitFor("spinning")));
    const usage = async (id: string): Promise<number> => Number(await readFile(cgroupFile("cpuacct", id, "cpuacct.usage"), "utf8"));
    await new Promise((r) => setTimeout(r, 300)); // let both loops settle on CPU 0
    const start = [await usage(light.id), await usage(heavy.id)];
    await new Promise((r) => setTimeout(r, 2000)); // the measurement window itself
    const end = [await usage(light.id), await usage(heavy.id)];
    ac.abort();
    await Promise.all(loops);
    const lightNs = end[0]! - start[0]!;
    const heavyNs = end[1]! - start[1]!;
    const ratio = heavyNs / lightNs;
    const detail = `cpu ns heavy=${heavyNs} light=${lightNs} ratio=${ratio.toFixed(2)}`;
    expect(ratio, detail).toBeGreaterThan(1.5);
    expect(ratio, detail).toBeLessThan(2.6);
  });

  it("caps disk writes at disk_mb", async () => {
    const sb = await fx.sandbox({ limits: { ...NO_LIMITS, diskMb: 10 }, privileged: false });
    const small = await sb.run(sh("dd if=/dev/zero of=/tmp/five bs=1M count=5 2>&1"), collect().io);
    expect(small.exitCode).toBe(0);
    const c = collect();
    const big = await sb.run(sh("dd if=/dev/zero of=/tmp/twenty bs=1M count=20"), c.io);
    expect(big.exitCode).not.toBe(0);
    expect(c.stderr()).toContain("No space left on device");
  });

  it("contains a fork bomb with the pids limit; the host keeps running sandboxes", async () => {
    const sb = await fx.sandbox({ limits: { ...NO_LIMITS, pids: 64 }, privileged: false });
    expect(await readFile(cgroupFile("pids", sb.id, "pids.max"), "utf8")).toBe("64\n");
    const ac = new AbortController();
    const c = collect();
    // PID 1 forks once, before any other process exists, and then execs: a shell whose own fork
    // fails exits, which is what happened when it started the bomb's pipeline itself (one fork
    // per side) and the first side had already taken every pid.
    const bomb = sb.runOnce!(sh("bomb() { bomb | bomb & }; bomb & exec sleep 100"), c.io, ac.signal);
    await c.waitFor("can't fork", "stderr");
    expect(Number(await readFile(cgroupFile("pids", sb.id, "pids.current"), "utf8"))).toBeLessThanOrEqual(64);
    ac.abort();
    expect((await bomb).exitCode).toBe(137);
    await sb.destroy();
    const after = await fx.sandbox();
    const out = collect();
    expect((await after.run(sh("echo still fine"), out.io)).exitCode).toBe(0);
    expect(out.stdout()).toBe("still fine\n");
  });
});
