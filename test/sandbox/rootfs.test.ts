import { mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBusyboxRootfs } from "../../cell-agent/src/rootfs/index.js";
import { collect, setupFixture, sh, type Fixture } from "./fixtures/sandbox-fixture.js";

let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe("ensureBusyboxRootfs", () => {
  it("builds once, even when called concurrently, and is idempotent", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "rootfs-test-"));
    try {
      const target = path.join(dir, "rootfs");
      const results = await Promise.all([1, 2, 3, 4].map(() => ensureBusyboxRootfs(target)));
      expect(new Set(results)).toEqual(new Set([target]));
      expect(await readdir(dir)).toEqual(["rootfs"]); // no temp dirs left behind
      const before = (await stat(path.join(target, "etc", "passwd"))).mtimeMs;
      await ensureBusyboxRootfs(target);
      expect((await stat(path.join(target, "etc", "passwd"))).mtimeMs).toBe(before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("contains busybox with its applets, users, hosts, /tmp and /home/vcap", async () => {
    const root = fx.rootfs;
    expect(await readlink(path.join(root, "bin", "sh"))).toBe("busybox");
    expect(await readlink(path.join(root, "bin", "seq"))).toBe("busybox");
    const passwd = await readFile(path.join(root, "etc", "passwd"), "utf8");
    expect(passwd).toMatch(/^root:x:0:0:/m);
    expect(passwd).toMatch(/^vcap:x:2000:2000:.*:\/home\/vcap:/m);
    expect(passwd).toMatch(/^nobody:x:65534:/m);
    expect(await readFile(path.join(root, "etc", "group"), "utf8")).toMatch(/^vcap:x:2000:/m);
    expect(await readFile(path.join(root, "etc", "hosts"), "utf8")).toMatch(/^127\.0\.0\.1\s+localhost/m);
    expect((await stat(path.join(root, "tmp"))).mode & 0o7777).toBe(0o1777);
    expect((await stat(path.join(root, "home", "vcap"))).uid).toBe(2000);
  });

  it("runs the everyday commands inside a sandbox", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const c = collect();
    const res = await sb.run(
      sh("echo hi | cat; sleep 0; true && seq 3 | head -n 2; dd if=/dev/zero bs=1k count=4 2>/dev/null | wc -c; id vcap; echo done"),
      c.io,
    );
    expect(res.exitCode).toBe(0);
    expect(c.stdout()).toBe("hi\n1\n2\n4096\nuid=2000(vcap) gid=2000(vcap) groups=2000(vcap)\ndone\n");
  });
});
