import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, mountsUnder, NO_LIMITS, setupFixture, sh, type Fixture } from "./fixtures/sandbox-fixture.js";

// Same code path as runc with the crun binary. On a hybrid cgroup host the runtime first moves
// the hugetlb controller off cgroup2 (crun refuses hybrid mode otherwise).
let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture("crun");
});
afterAll(async () => {
  await fx.cleanup();
});

describe("crun sandboxes", () => {
  it("runs processes with output, exit codes and env", async () => {
    expect(fx.runtime.name).toBe("crun");
    const sb = await fx.sandbox({ env: ["A=1", "B=container"] });
    const c = collect();
    const res = await sb.run(sh("echo $A $B; echo oops >&2; exit 7", { env: ["B=process"] }), c.io);
    expect(res).toEqual({ exitCode: 7, oomKilled: false });
    expect(c.stdout()).toBe("1 process\n");
    expect(c.stderr()).toBe("oops\n");
    // Nothing is left on the cgroup2 hierarchy for crun to object to.
    expect((await readFile("/sys/fs/cgroup/unified/cgroup.controllers", "utf8").catch(() => "")).trim()).toBe("");
  });

  it("runOnce runs the process as the container's init, OOM included", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    expect(await sb.runOnce!(sh("echo once; exit 2"), c.io)).toEqual({ exitCode: 2, oomKilled: false });
    expect(c.stdout()).toBe("once\n");
    const oom = await fx.sandbox({ privileged: false, limits: { ...NO_LIMITS, memoryMb: 32 } });
    expect(await oom.runOnce!(sh("head -c 200m /dev/zero | tail > /dev/null"), collect().io)).toEqual({
      exitCode: 137,
      oomKilled: true,
    });
  });

  it("isolates an unprivileged sandbox and enforces memory and disk limits", async () => {
    const sb = await fx.sandbox({ privileged: false, limits: { ...NO_LIMITS, memoryMb: 32, diskMb: 10 } });
    const c = collect();
    await sb.run(sh("id -u; cat /proc/self/uid_map; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"), c.io);
    expect(c.stdout().split("\n")[0]).toBe("0");
    expect(c.stdout()).toMatch(new RegExp(`0\\s+${sb.hostRootUid}\\s+65536`)); // its own range, from 100000 up
    expect(sb.hostRootUid).toBeGreaterThanOrEqual(100000);
    expect(c.stdout().trim().split("\n").at(-1)).toBe("lo");
    expect(await sb.run(sh("head -c 200m /dev/zero | tail > /dev/null"), collect().io)).toEqual({ exitCode: 137, oomKilled: true });
    const disk = collect();
    expect((await sb.run(sh("dd if=/dev/zero of=/tmp/big bs=1M count=20"), disk.io)).exitCode).not.toBe(0);
    expect(disk.stderr()).toContain("No space left on device");
  });

  it("kills on abort and cleans up on destroy", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const c = collect();
    const ac = new AbortController();
    const running = sb.run(sh("echo up; sleep 100"), c.io, ac.signal);
    await c.waitFor("up");
    const t0 = performance.now();
    ac.abort();
    expect((await running).exitCode).toBe(137);
    expect(performance.now() - t0).toBeLessThan(1000);
    const bundle = path.dirname(sb.rootfsPath);
    await sb.destroy();
    expect(await mountsUnder(bundle)).toEqual([]);
  });
});
