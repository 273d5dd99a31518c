import net from "node:net";
import { execFile } from "node:child_process";
import { chmod, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, setupFixture, sh, type Fixture } from "./fixtures/sandbox-fixture.js";

let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe("unprivileged sandboxes (user namespace)", () => {
  it("is root inside and an unprivileged uid outside", async () => {
    const sb = await fx.sandbox({ privileged: false });
    // Its own range of 65536 ids from 100000 up, registered in /etc/subuid (see test/security).
    expect(sb.hostRootUid).toBeGreaterThanOrEqual(100000);
    expect(sb.hostRootUid % 65536).toBe(100000 % 65536);
    const c = collect();
    await sb.run(sh("id -u; touch /tmp/made-inside; cat /proc/self/uid_map"), c.io);
    const [uid, map] = c.stdout().split("\n");
    expect(uid).toBe("0");
    expect(map?.trim().split(/\s+/)).toEqual(["0", String(sb.hostRootUid), "65536"]);
    expect((await stat(path.join(sb.rootfsPath, "tmp", "made-inside"))).uid).toBe(sb.hostRootUid);
    expect((await stat(sb.rootfsPath)).uid).toBe(sb.hostRootUid); // the upper dir belongs to container root
  });

  it("cannot write a host root-owned file, bound read-only or read-write", async () => {
    const hostFile = path.join(fx.dir, "host-secret.txt");
    await writeFile(hostFile, "host data\n");
    await chmod(hostFile, 0o644);
    const sb = await fx.sandbox({
      privileged: false,
      bindMounts: [
        { source: hostFile, destination: "/mnt/ro.txt", readonly: true },
        { source: hostFile, destination: "/mnt/rw.txt", readonly: false },
      ],
    });
    const c = collect();
    const res = await sb.run(
      sh("cat /mnt/rw.txt; echo evil > /mnt/ro.txt && echo ro-written; echo evil > /mnt/rw.txt && echo rw-written; ls -ln /mnt/rw.txt"),
      c.io,
    );
    expect(res.exitCode).toBe(0);
    expect(c.stdout()).toContain("host data");
    expect(c.stdout()).not.toContain("written");
    expect(c.stderr()).toMatch(/Read-only file system/);
    expect(c.stderr()).toMatch(/Permission denied/);
    expect(c.stdout()).toMatch(/65534\s+65534/); // the unmapped host root shows as nobody
    expect(await readFile(hostFile, "utf8")).toBe("host data\n");
  });

  it("sees only its own processes", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const c = collect();
    await sb.run(sh("ps -o pid,comm; echo; ls /proc | grep -E '^[0-9]+$' | wc -l"), c.io);
    const [table, count] = c.stdout().split("\n\n");
    const pids = table!.trim().split("\n").slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids.length).toBeGreaterThan(0);
    expect(pids.length).toBeLessThanOrEqual(6);
    expect(table).not.toMatch(/node|vitest|runc/);
    expect(Number(count)).toBeLessThanOrEqual(6);
  });

  it("sees the layer's files owned by container root", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const c = collect();
    await sb.run(sh("stat -c '%u %g' /bin/busybox /etc/passwd; stat -c '%u %a' /tmp /home/vcap"), c.io);
    expect(c.stdout()).toBe("0 0\n0 0\n0 1777\n2000 755\n");
  });
  it("uses a layer through idmapped mounts, without copying it, even for concurrent sandboxes", async () => {
    const layer = path.join(fx.dir, "fresh-layer");
    await promisify(execFile)("cp", ["-a", fx.rootfs, layer]);
    const sandboxes = await Promise.all([1, 2, 3].map(() => fx.sandbox({ privileged: false, layers: [layer] })));
    const outs = await Promise.all(
      sandboxes.map(async (sb) => {
        const c = collect();
        await sb.run(sh("stat -c %u /bin/busybox /home/vcap"), c.io);
        return c.stdout();
      }),
    );
    expect(outs).toEqual(["0\n2000\n", "0\n2000\n", "0\n2000\n"]);
    expect(new Set(sandboxes.map((sb) => sb.hostRootUid)).size).toBe(3); // a range each
    expect((await stat(path.join(layer, "home", "vcap"))).uid).toBe(2000); // the layer itself is untouched
    expect((await readdir(fx.dir)).filter((n) => n.includes("fresh-layer"))).toEqual(["fresh-layer"]); // no copies
  });

  it("keeps container root away from mounts, new namespaces and extra capabilities", async () => {
    for (const privileged of [false, true]) {
      const sb = await fx.sandbox({ privileged });
      const c = collect();
      await sb.run(sh("unshare -U true; echo unshare=$?; mount -t tmpfs t /mnt; echo mount=$?; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status"), c.io);
      expect(c.stdout()).toContain("unshare=1");
      expect(c.stdout()).toContain("mount=1");
      expect(c.stdout()).toMatch(/CapEff:\s+00000000a80425fb/); // Docker's default set, no CAP_SYS_ADMIN
      expect(c.stdout()).toMatch(/NoNewPrivs:\s+1/);
      expect(c.stdout()).toMatch(/Seccomp:\s+2/);
    }
  });
});

describe("network isolation", () => {
  it("has only a loopback interface, and it is up", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const c = collect();
    await sb.run(sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip link show lo"), c.io);
    const [iface, ...rest] = c.stdout().split("\n");
    expect(iface).toBe("lo");
    expect(rest.join("\n")).toMatch(/<LOOPBACK,UP/);
  });

  it("serves and connects on its own 127.0.0.1", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const c = collect();
    const res = await sb.run(
      sh("mkdir /tmp/www && echo hello-loopback > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www && wget -q -O - http://127.0.0.1:8080/index.html"),
      c.io,
    );
    expect(res.exitCode).toBe(0);
    expect(c.stdout()).toBe("hello-loopback\n");
  });

  it("cannot reach a server on the host's 127.0.0.1", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.end("host says hi\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      for (const privileged of [false, true]) {
        const sb = await fx.sandbox({ privileged });
        const c = collect();
        const res = await sb.run(sh(`echo hi | nc -w 2 127.0.0.1 ${port}`), c.io);
        expect(res.exitCode).not.toBe(0);
        expect(c.stdout()).not.toContain("host says hi");
      }
      expect(connections).toBe(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe("privileged sandboxes", () => {
  it("run as real root but still in their own namespaces", async () => {
    const sb = await fx.sandbox({ privileged: true });
    expect(sb.hostRootUid).toBe(0);
    const c = collect();
    await sb.run(sh("cat /proc/self/uid_map; hostname; ls /proc | grep -E '^[0-9]+$' | wc -l"), c.io);
    const [map, hostname, count] = c.stdout().split("\n");
    expect(map?.trim().split(/\s+/)).toEqual(["0", "0", "4294967295"]);
    expect(hostname).toBe(sb.id);
    expect(Number(count)).toBeLessThanOrEqual(6);
  });
});
