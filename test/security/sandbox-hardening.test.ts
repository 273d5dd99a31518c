// What a container's root can reach beyond its own files: other containers' files and the shared
// layers (each unprivileged container has its own id range from /etc/subuid), syscalls outside
// Docker's default allow-list, the cell's open-file limit, cgroup paths and host paths.
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cellKey, type Sandbox } from "../../cell-agent/src/sandbox/index.js";
import { collect, setupFixture, sh, type Fixture } from "../sandbox/fixtures/sandbox-fixture.js";
import { PERSONALITY_QUERY_PROBE, READ_IMPLIES_EXEC_PROBE, UNIX_SOCKET_PROBE, VSOCK_PROBE } from "./tiny-elf.js";

let fx: Fixture;
let probes: string;
beforeAll(async () => {
  fx = await setupFixture();
  probes = path.join(fx.dir, "probes");
  await mkdir(probes);
  const programs = { vsock: VSOCK_PROBE, unix: UNIX_SOCKET_PROBE, rie: READ_IMPLIES_EXEC_PROBE, persona: PERSONALITY_QUERY_PROBE };
  for (const [name, bytes] of Object.entries(programs)) {
    await writeFile(path.join(probes, name), bytes);
    await chmod(path.join(probes, name), 0o755);
  }
});
afterAll(async () => {
  await fx.cleanup();
});

async function output(sb: Sandbox, script: string, nofile?: number): Promise<string> {
  const c = collect();
  const res = await sb.run({ ...sh(script), nofile }, c.io);
  expect(res.exitCode, c.stderr()).toBe(0);
  return c.stdout();
}

/** Registered ranges for root: "start:count" lines of /etc/subuid or /etc/subgid. */
async function registered(file: string): Promise<string[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.startsWith("root:")).map((l) => l.slice("root:".length));
}

describe("one unprivileged container against another and the shared layer", () => {
  it("has its own host id range from /etc/subuid, and its root cannot write the other's files or the layer", async () => {
    // The layer sits in a directory of its own, which the attacker gets read-write below:
    // whatever the cell derives from the layer next to it (copies, ...) is in reach too.
    const layers = path.join(fx.dir, "layers");
    await mkdir(layers);
    const layer = path.join(layers, "base");
    await promisify(execFile)("cp", ["-a", fx.rootfs, layer]);
    const victim = await fx.sandbox({ privileged: false, layers: [layer] });
    await output(victim, "echo victim-data > /tmp/victim-file; cat /etc/passwd > /dev/null");
    const attacker = await fx.sandbox({
      privileged: false,
      layers: [layer],
      bindMounts: [
        { source: victim.rootfsPath, destination: "/mnt/victim", readonly: false },
        { source: layers, destination: "/mnt/layers", readonly: false },
      ],
    });

    const c = collect();
    await attacker.run(
      sh(
        [
          "echo pwned >> /mnt/victim/tmp/victim-file && echo wrote-victim-file",
          "echo pwned >> /mnt/victim/etc/passwd && echo wrote-victim-passwd",
          "touch /mnt/victim/etc/new && echo created-in-victim",
          "for f in $(find /mnt/layers -name passwd); do echo pwned >> $f && echo wrote-layer-$f; done",
          "stat -c '%u' /mnt/victim/tmp/victim-file",
        ].join("; "),
      ),
      c.io,
    );
    expect(c.stdout()).not.toMatch(/wrote|created/);
    expect(c.stdout()).toContain("65534"); // the victim's root is nobody to the attacker
    expect(await readFile(path.join(victim.rootfsPath, "tmp", "victim-file"), "utf8")).toBe("victim-data\n");
    const passwds = (await promisify(execFile)("find", [layers, "-name", "passwd"])).stdout.trim().split("\n");
    for (const f of passwds) expect(await readFile(f, "utf8")).not.toContain("pwned");

    for (const sb of [victim, attacker]) {
      expect(sb.hostRootUid).toBeGreaterThanOrEqual(100000);
      expect(await registered("/etc/subuid")).toContain(`${sb.hostRootUid}:65536`);
      expect(await registered("/etc/subgid")).toContain(`${sb.hostRootUid}:65536`);
    }
    expect(Math.abs(victim.hostRootUid - attacker.hostRootUid)).toBeGreaterThanOrEqual(65536);
    const ranges = [victim.hostRootUid, attacker.hostRootUid];
    await Promise.all([victim.destroy(), attacker.destroy()]);
    for (const start of ranges) expect(await registered("/etc/subuid")).not.toContain(`${start}:65536`); // released
  });
});

describe("gates under churn", () => {
  it("lets every container's runtime through while others open and close their gates", async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const codes: number[] = [];
        for (let round = 0; round < 2; round++) {
          const sb = await fx.sandbox({ privileged: false });
          const c = collect();
          codes.push((await sb.runOnce!(sh("echo up"), c.io)).exitCode);
          await sb.destroy();
        }
        return codes;
      }),
    );
    expect(results.flat()).toEqual(Array(32).fill(0));
  });
});

describe("seccomp allow-list", () => {
  for (const privileged of [false, true]) {
    it(`refuses AF_VSOCK sockets and READ_IMPLIES_EXEC, allows ordinary calls (${privileged ? "privileged" : "unprivileged"})`, async () => {
      const sb = await fx.sandbox({ privileged, bindMounts: [{ source: probes, destination: "/probes", readonly: true }] });
      const out = await output(
        sb,
        "for p in vsock unix rie persona; do /probes/$p; echo $p=$?; done; grep Seccomp: /proc/self/status",
      );
      // Exit status = errno of the call; 1 = EPERM from the filter.
      expect(out).toContain("vsock=1\n");
      expect(out).toContain("rie=1\n");
      expect(out).toContain("unix=0\n");
      expect(out).toContain("persona=0\n");
      expect(out).toMatch(/Seccomp:\s+2/);
    });
  }

  it("keeps ordinary tasks working: files, pipes, processes, signals, sockets", async () => {
    const sb = await fx.sandbox({ privileged: false });
    const out = await output(
      sb,
      [
        "mkdir -p /tmp/w && cd /tmp/w && echo a > f && ln -s f l && cat l | tr a b",
        "sleep 5 & kill $! && wait $!; echo killed=$?",
        "(httpd -p 127.0.0.1:8081 -h /tmp/w && wget -q -O - http://127.0.0.1:8081/f)",
        "ps -o pid,comm | grep -c sh > /dev/null && echo ps-ok",
      ].join("; "),
    );
    expect(out).toBe("b\nkilled=143\na\nps-ok\n");
  });
});

describe("limits and namespaces", () => {
  it("sets RLIMIT_NOFILE to 1024 (hard 4096), or the run action's nofile, not the cell's", async () => {
    const sb = await fx.sandbox({ privileged: false });
    // Exec'd by runc 1.1: the hard limit equals the soft one (see sandbox.ts); crun keeps 4096.
    const hard = fx.runtime.name === "runc" ? 1024 : 4096;
    expect(await output(sb, "ulimit -n; ulimit -Hn")).toBe(`1024\n${hard}\n`);
    expect(await output(sb, "ulimit -n; ulimit -Hn", 2000)).toBe("2000\n2000\n");
    for (const privileged of [false, true]) {
      const once = await fx.sandbox({ privileged });
      const c = collect();
      await once.runOnce!(sh("ulimit -n; ulimit -Hn"), c.io);
      expect(c.stdout()).toBe("1024\n4096\n");
    }
  });

  it("gives each container its own cgroup namespace", async () => {
    for (const privileged of [false, true]) {
      const sb = await fx.sandbox({ privileged, limits: { memoryMb: 64, cpuWeight: 0, diskMb: 0, pids: 100 } });
      const lines = (await output(sb, "cat /proc/self/cgroup")).trim().split("\n");
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line).toMatch(/:\/$/);
    }
  });

  it("shows no host path of the cell in /proc/self/mountinfo", async () => {
    for (const privileged of [false, true]) {
      const sb = await fx.sandbox({ privileged, limits: { memoryMb: 0, cpuWeight: 0, diskMb: privileged ? 16 : 0, pids: 0 } });
      const info = await output(sb, "cat /proc/self/mountinfo");
      const root = info.split("\n").find((l) => l.split(" ")[4] === "/");
      expect(root).toMatch(/ - overlay overlay .*lowerdir=lower\/0,upperdir=(fs|disk)\/upper,workdir=(fs|disk)\/work/);
      // crun 1.8 drops the overlay's nosuid,nodev when it binds the rootfs; no_new_privs (setuid
      // bits are ignored) and the devices cgroup (no device opens) cover the same ground there.
      if (fx.runtime.name === "runc") expect(root).toMatch(/ \/ \/ [^ ]*nosuid,nodev/);
      expect(await output(sb, "grep NoNewPrivs /proc/self/status")).toBe("NoNewPrivs:\t1\n");
      expect(info).not.toContain(fx.dir);
      expect(info).not.toContain("/run/diego");
    }
  });
});

describe("setuid files and device nodes made inside the container", () => {
  // crun leaves the container's root without nosuid,nodev (runc keeps them): these are the two
  // attacks those flags stop, run against whichever runtime the cell uses.
  it("a setuid-root copy of busybox gives a non-root user no root", async () => {
    for (const privileged of [false, true]) {
      const sb = await fx.sandbox({ privileged });
      await output(sb, "mkdir -p /tmp/s && cp /bin/busybox /tmp/s/busybox && chmod 4755 /tmp/s/busybox");
      const c = collect();
      const res = await sb.run(sh("/tmp/s/busybox id -u; /tmp/s/busybox grep '^Uid' /proc/self/status", { user: "nobody" }), c.io);
      expect(res.exitCode, c.stderr()).toBe(0);
      const [euid, uidLine] = c.stdout().trim().split("\n");
      expect(euid).not.toBe("0");
      // Uid: real effective saved fs — none of them root.
      expect(uidLine!.split(/\s+/).slice(1)).not.toContain("0");
    }
  });

  it("a block device node made in the root filesystem cannot be opened", async () => {
    for (const privileged of [false, true]) {
      const sb = await fx.sandbox({ privileged });
      const c = collect();
      // 254:0 and 8:0: the usual first virtio and SCSI disks; mknod itself may already be refused.
      const res = await sb.run(sh("for d in 254:0 8:0 253:0; do mknod /tmp/disk b ${d%:*} ${d#*:} 2>/dev/null || continue; head -c 1 /tmp/disk >/dev/null 2>&1 && echo OPENED $d; rm -f /tmp/disk; done; echo done"), c.io);
      expect(res.exitCode, c.stderr()).toBe(0);
      expect(c.stdout()).toBe("done\n");
    }
  });
});

describe("host mounts", () => {
  it("mounts the rootfs, its gate and the upper dirs nosuid,nodev", async () => {
    for (const diskMb of [0, 16]) {
      const sb = await fx.sandbox({ privileged: true, limits: { memoryMb: 0, cpuWeight: 0, diskMb, pids: 0 } });
      const bundle = path.dirname(sb.rootfsPath);
      const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
        .split("\n")
        .map((l) => l.split(" "))
        .filter((f) => f[4]?.startsWith(`${bundle}/`) || f[4]?.includes(`/diego-${cellKey(fx.workDir)}/${sb.id}/`));
      expect(mounts.map((f) => path.basename(f[4]!)).sort()).toEqual([diskMb > 0 ? "disk" : "fs", "rootfs", "rootfs"]);
      for (const f of mounts) expect(f[5], f[4]).toMatch(/(^|,)nosuid,nodev(,|$)/);
    }
  });
});

describe("with crun", () => {
  let crun: Fixture;
  beforeAll(async () => {
    crun = await setupFixture("crun");
  });
  afterAll(async () => {
    await crun?.cleanup();
  });

  it("applies the same seccomp allow-list, nofile limit, cgroup namespace and id range", async () => {
    const sb = await crun.sandbox({ privileged: false, bindMounts: [{ source: probes, destination: "/probes", readonly: true }] });
    const out = await output(sb, "for p in vsock unix rie persona; do /probes/$p; echo $p=$?; done; ulimit -n; ulimit -Hn; cat /proc/self/cgroup");
    expect(out).toMatch(/^vsock=1\nunix=0\nrie=1\npersona=0\n1024\n4096\n/);
    for (const line of out.trim().split("\n").slice(6)) expect(line).toMatch(/:\/$/);
    expect(await registered("/etc/subuid")).toContain(`${sb.hostRootUid}:65536`);
  });
});
