// Another user on the cell's machine must get nothing from its containers: not read their files,
// not reach them by host path, and above all not run a setuid-root file a privileged task planted
// in its overlay (Docker's CVE-2021-41091). The attacks run as `nobody` through setpriv.
import { execFile } from "node:child_process";
import { readdir, stat, writeFile, chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cellKey } from "../../cell-agent/src/sandbox/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { collect, setupFixture, sh, type Fixture } from "../sandbox/fixtures/sandbox-fixture.js";
import { EUID_PROBE } from "./tiny-elf.js";

// setpriv keeps its capabilities until it execs, so it execs env (a system binary), which then
// looks the target up as a plain nobody without capabilities.
const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "--"];

/** Runs argv as host user nobody; resolves its exit code and output, never throws. */
async function asNobody(argv: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)("setpriv", [...NOBODY, ...argv]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/** Every host path (as root sees them) below roots whose name is one of names. */
async function findAll(roots: string[], names: string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (names.includes(e.name)) found.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  for (const r of roots) await walk(r);
  return found;
}

/** A shell line that writes bytes to file with printf octal escapes (busybox has no base64 -d here). */
const writeBytes = (bytes: Buffer, file: string): string =>
  `printf '${[...bytes].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("")}' > ${file}`;

describe("a privileged task's planted setuid-root file, through a real cell", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("cannot be reached, read or run by another host user", async () => {
    const plant = [
      "mkdir -p /tmp/p",
      writeBytes(EUID_PROBE, "/tmp/p/planted-probe"),
      "chmod 4755 /tmp/p/planted-probe",
      "echo container-secret > /tmp/p/planted-secret && chmod 644 /tmp/p/planted-secret",
      "touch /tmp/p/planted-ready",
      "sleep 60",
    ].join(" && ");
    const res = await cluster.createTask({
      task_guid: "plant-setuid",
      domain: "security",
      stack: "lucid64",
      privileged: true,
      action: { run: { path: "/bin/sh", args: ["-c", plant] } },
    });
    expect(res.status).toBe(201);
    try {
      const cellDir = path.join(cluster.workDir, cluster.cells[0]!.cellId);
      const roots = [cluster.workDir, `/run/diego-${cellKey(path.join(cellDir, "containers"))}`];
      let ready: string[] = [];
      for (let i = 0; i < 400 && ready.length === 0; i++) {
        ready = await findAll(roots, ["planted-ready"]);
        if (ready.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(ready.length).toBeGreaterThan(0);
      const probes = await findAll(roots, ["planted-probe"]);
      const secrets = await findAll(roots, ["planted-secret"]);
      expect(probes.length).toBeGreaterThan(0); // the overlay and its upper dir, at least
      for (const probe of probes) {
        expect((await stat(probe)).mode & 0o4000).toBe(0o4000); // planted: setuid root on the host
        const attack = await asNobody([probe]);
        // Exit status 0 would be euid 0: root for any local user.
        expect(attack.code, `nobody ran ${probe}`).not.toBe(0);
        expect(attack.out, `${probe}: ${attack.code}`).toMatch(/Permission denied/);
      }
      for (const secret of secrets) {
        const read = await asNobody(["/bin/cat", secret]);
        expect(read.code).not.toBe(0);
        expect(read.out).not.toContain("container-secret");
      }
    } finally {
      await fetch(`${cluster.url}/v1/tasks/plant-setuid/cancel`, { method: "POST" });
    }
  });

  it("keeps the cell's work dir 0700 and adds no search bit above it", async () => {
    const cellDir = path.join(cluster.workDir, cluster.cells[0]!.cellId);
    expect((await stat(cellDir)).mode & 0o7777).toBe(0o700);
    expect((await stat(path.join(cellDir, "containers"))).mode & 0o7777).toBe(0o700);
    expect((await stat(cluster.workDir)).mode & 0o001).toBe(0); // mkdtemp's 0700, untouched
    expect((await asNobody(["/bin/ls", path.join(cellDir, "containers")])).code).not.toBe(0);
  });
});

describe("container files, by host path", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await setupFixture();
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  for (const privileged of [true, false]) {
    it(`are unreadable to another host user (${privileged ? "privileged" : "unprivileged"})`, async () => {
      const probes = path.join(fx.dir, `probes-${privileged}`);
      await mkdir(probes);
      await writeFile(path.join(probes, "euid"), EUID_PROBE);
      await chmod(path.join(probes, "euid"), 0o755);
      const sb = await fx.sandbox({ privileged, bindMounts: [{ source: probes, destination: "/probes", readonly: true }] });
      const c = collect();
      const planted = await sb.run(
        sh("cp /probes/euid /tmp/planted-probe && chmod 4755 /tmp/planted-probe && echo container-secret > /tmp/planted-secret"),
        c.io,
      );
      expect(planted.exitCode).toBe(0);
      const roots = [fx.workDir, `/run/diego-${cellKey(fx.workDir)}`];
      const paths = await findAll(roots, ["planted-probe", "planted-secret"]);
      expect(paths.length).toBeGreaterThanOrEqual(2);
      for (const p of paths) {
        const attack = await asNobody(p.endsWith("probe") ? [p] : ["/bin/cat", p]);
        expect(attack.code, `nobody used ${p}`).not.toBe(0);
        expect(attack.out).not.toContain("container-secret");
      }
      // Root on the host still reads them (the executor needs that).
      expect((await stat(path.join(sb.rootfsPath, "tmp", "planted-secret"))).size).toBeGreaterThan(0);
    });
  }
});
