import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxStateError, UnknownUserError } from "../../cell-agent/src/sandbox/index.js";
import { collect, setupFixture, sh, type Fixture } from "./fixtures/sandbox-fixture.js";

let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe("processes in a sandbox", () => {
  it("streams stdout and stderr to the callbacks and reports the exit code", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    const res = await sb.run(sh("echo to-out; echo to-err >&2; exit 3"), c.io);
    expect(res).toEqual({ exitCode: 3, oomKilled: false });
    expect(c.stdout()).toBe("to-out\n");
    expect(c.stderr()).toBe("to-err\n");
    expect((await sb.run(sh("true"), collect().io)).exitCode).toBe(0);
  });

  it("layers the env: container env, then process env, later wins; PATH has a default", async () => {
    const sb = await fx.sandbox({ env: ["A=container", "B=container", "C=only-container"] });
    const c = collect();
    await sb.run({ path: "/bin/env", args: [], env: ["B=process", "D=only-process", "A=process-too"] }, c.io);
    const env = c.stdout().trim().split("\n");
    expect(env).toContain("A=process-too");
    expect(env).toContain("B=process");
    expect(env).toContain("C=only-container");
    expect(env).toContain("D=only-process");
    expect(env).toContain("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    expect(env.filter((e) => e.startsWith("B="))).toHaveLength(1);
  });

  it("runs several processes, in parallel, in one shared filesystem", async () => {
    const sb = await fx.sandbox();
    const writer = collect();
    const [a, b] = await Promise.all([
      sb.run(sh("echo from-a > /tmp/a.txt"), writer.io),
      sb.run(sh("echo from-b > /tmp/b.txt"), writer.io),
    ]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const reader = collect();
    await sb.run(sh("cat /tmp/a.txt /tmp/b.txt"), reader.io);
    expect(reader.stdout()).toBe("from-a\nfrom-b\n");
    expect(await readFile(path.join(sb.rootfsPath, "tmp", "a.txt"), "utf8")).toBe("from-a\n");
  });

  it("never writes into the layer", async () => {
    const sb = await fx.sandbox();
    const before = await readdir(path.join(fx.rootfs, "tmp"));
    const res = await sb.run(sh("echo x > /tmp/new.txt && rm /bin/cat && echo y > /etc/passwd"), collect().io);
    expect(res.exitCode).toBe(0);
    expect(await readdir(path.join(fx.rootfs, "tmp"))).toEqual(before);
    expect(await readdir(path.join(fx.rootfs, "bin"))).toContain("cat");
    expect(await readFile(path.join(fx.rootfs, "etc", "passwd"), "utf8")).toContain("vcap:x:2000");
  });

  it("runs as a named or numeric user and in the requested directory", async () => {
    const sb = await fx.sandbox({ workdir: "/home/vcap" });
    const byName = collect();
    await sb.run(sh("id -u; id -g; pwd"), byName.io, undefined);
    expect(byName.stdout()).toBe("0\n0\n/home/vcap\n");
    const vcap = collect();
    await sb.run(sh("id -un; pwd; grep CapEff /proc/self/status", { user: "vcap", dir: "/tmp" }), vcap.io);
    // A non-root user starts without effective capabilities.
    expect(vcap.stdout()).toBe("vcap\n/tmp\nCapEff:\t0000000000000000\n");
    const numeric = collect();
    await sb.run(sh("id -u", { user: "2000" }), numeric.io);
    expect(numeric.stdout()).toBe("2000\n");
    await expect(sb.run(sh("true", { user: "nosuchuser" }), collect().io)).rejects.toBeInstanceOf(UnknownUserError);
  });

  it("creates a missing image workdir", async () => {
    const sb = await fx.sandbox({ workdir: "/app/work" });
    const c = collect();
    await sb.run(sh("pwd"), c.io);
    expect(c.stdout()).toBe("/app/work\n");
  });

  it("applies the nofile limit", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    await sb.run(sh("ulimit -n", { nofile: 321 }), c.io);
    expect(c.stdout()).toBe("321\n");
  });

  it("reports exit code 127 with the runtime's message for a path that does not exist", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    const res = await sb.run({ path: "/no/such/binary", args: [], env: [] }, c.io);
    expect(res.exitCode).toBe(127);
    expect(c.stderr()).toMatch(/no such file or directory/i);
  });

  it("kills a process within a second when the signal aborts", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    const ac = new AbortController();
    const running = sb.run(sh("echo started; sleep 100"), c.io, ac.signal);
    await c.waitFor("started");
    const t0 = performance.now();
    ac.abort();
    const res = await running;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(res.exitCode).toBe(137);
    // The sandbox keeps working after the kill.
    expect((await sb.run(sh("exit 4"), collect().io)).exitCode).toBe(4);
  });
});

describe("runOnce (single-process fast path)", () => {
  it("streams output and reports the exit code", async () => {
    const sb = await fx.sandbox({ env: ["A=1"] });
    const c = collect();
    const res = await sb.runOnce!(sh("echo out $A $B; echo err >&2; exit 5", { env: ["B=2"] }), c.io);
    expect(res).toEqual({ exitCode: 5, oomKilled: false });
    expect(c.stdout()).toBe("out 1 2\n");
    expect(c.stderr()).toBe("err\n");
  });

  it("leaves files readable through rootfsPath after the process exits", async () => {
    const sb = await fx.sandbox();
    await sb.runOnce!(sh("echo result > /tmp/result.json"), collect().io);
    expect(await readFile(path.join(sb.rootfsPath, "tmp", "result.json"), "utf8")).toBe("result\n");
  });

  it("is killed within a second when the signal aborts", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    const ac = new AbortController();
    const running = sb.runOnce!(sh("echo started; sleep 100"), c.io, ac.signal);
    await c.waitFor("started");
    const t0 = performance.now();
    ac.abort();
    const res = await running;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(res.exitCode).toBe(137);
  });

  it("reports 127 for a missing binary", async () => {
    const sb = await fx.sandbox();
    const c = collect();
    expect((await sb.runOnce!({ path: "/nope", args: [], env: [] }, c.io)).exitCode).toBe(127);
    expect(c.stderr()).toMatch(/no such file or directory/i);
  });

  it("may only be the sandbox's one process", async () => {
    const sb = await fx.sandbox();
    await sb.run(sh("true"), collect().io);
    await expect(sb.runOnce!(sh("true"), collect().io)).rejects.toBeInstanceOf(SandboxStateError);
    const once = await fx.sandbox();
    await once.runOnce!(sh("true"), collect().io);
    await expect(once.run(sh("true"), collect().io)).rejects.toBeInstanceOf(SandboxStateError);
  });
});
