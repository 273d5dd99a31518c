import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cellNames, NetworkConfigError, startCellNetwork } from "../../cell-agent/src/network/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { eventually } from "./net-fixture.js";
import { listTable, vethsWithPrefix } from "./test-host.js";

// Nothing of a container's network outlives it: not after its task, not after a SIGKILLed cell
// restarts on the same work dir. Cells get pools and bridges of their own.

const silent = pino({ level: "silent" });
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "net-leftovers-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Everything of a cell's container networks that can be listed. */
async function leftovers(workDir: string): Promise<{ veths: string[]; chains: string[]; netns: string[]; leases: string[]; ports: string[] }> {
  const names = cellNames(workDir);
  const ls = async (sub: string): Promise<string[]> => (await readdir(path.join(workDir, "network", sub)).catch(() => [])).sort();
  const table = listTable("inet", names.table) + listTable("bridge", names.table);
  const mounts = await readFile("/proc/self/mountinfo", "utf8");
  return {
    veths: vethsWithPrefix(names.vethPrefix),
    // Container chains (c<n>, p<n>) and the elements naming containers.
    chains: [...table.matchAll(/chain ([cp][0-9]+) \{|jump ([cp][0-9]+)|"(dv[0-9a-f]+)" \./g)].map((m) => m[1] ?? m[2] ?? m[3]!),
    netns: [...(await ls("netns")), ...mounts.split("\n").filter((l) => l.includes(path.join(workDir, "network", "netns")))],
    leases: await ls("leases"),
    ports: await ls("ports"),
  };
}

/** Spare network namespaces (made ahead for the next containers) still mounted. */
async function spareMounts(workDir: string): Promise<string[]> {
  const mounts = await readFile("/proc/self/mountinfo", "utf8");
  return mounts.split("\n").filter((l) => l.includes(path.join(workDir, "network", "spares")));
}

const NONE = { veths: [], chains: [], netns: [], leases: [], ports: [] };

describe("after a task ends", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it("its veth, chains, namespace and lease are gone", async () => {
    const cellDir = path.join(cluster.workDir, cluster.cells[0]!.cellId);
    expect(await leftovers(cellDir)).toEqual(NONE);
    const guid = `leftover-${process.pid}`;
    const res = await cluster.createTask({
      task_guid: guid,
      domain: "net",
      stack: "lucid64",
      action: { run: { path: "/bin/sh", args: ["-c", "touch /tmp/started; sleep 2"] } },
      security_group_rules: [{ protocol: "tcp", destinations: ["10.0.0.0/8"], ports: [80], log: true }],
    });
    expect(res.status).toBe(201);
    await eventually("the task's network", async () => (await leftovers(cellDir)).veths.length === 1, 20_000);
    const during = await leftovers(cellDir);
    expect(during.chains).toEqual(expect.arrayContaining([expect.stringMatching(/^c[0-9]+$/)]));
    expect(during.netns.length).toBe(2); // the file and its mount
    expect(during.leases.length).toBe(1);
    const done = await cluster.waitCompleted(guid);
    expect(done.failed).toBe(false);
    await eventually("no leftovers", async () => JSON.stringify(await leftovers(cellDir)) === JSON.stringify(NONE));
  });

  it("so are the namespace and user namespace files of an unprivileged task that may ping", async () => {
    const cellDir = path.join(cluster.workDir, cluster.cells[0]!.cellId);
    const guid = `leftover-icmp-${process.pid}`;
    const res = await cluster.createTask({
      task_guid: guid,
      domain: "net",
      stack: "lucid64",
      action: { run: { path: "/bin/sh", args: ["-c", "touch /tmp/started; sleep 2"] } },
      security_group_rules: [{ protocol: "icmp", destinations: ["10.0.0.0/8"], icmp_info: { type: 8, code: 0 } }],
    });
    expect(res.status).toBe(201);
    await eventually("the task's network", async () => (await leftovers(cellDir)).veths.length === 1, 20_000);
    // The network namespace and the user namespace owning it: two files and their mounts.
    expect((await leftovers(cellDir)).netns.length).toBe(4);
    expect((await cluster.waitCompleted(guid)).failed).toBe(false);
    await eventually("no leftovers", async () => JSON.stringify(await leftovers(cellDir)) === JSON.stringify(NONE));
  });
});

describe("a cell SIGKILLed and restarted on the same work dir", () => {
  it("removes the namespaces, veths, chains, leases and port reservations it left", async () => {
    const workDir = path.join(dir, "killed");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "fixtures", "killed-network.ts"), workDir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (c: Buffer) => c.toString().includes("ready") && resolve());
      child.once("exit", (code) => reject(new Error(`fixture exited with ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const left = await leftovers(workDir);
    expect(left.veths.length).toBe(2);
    expect(left.chains).toEqual(expect.arrayContaining(["c2", "c3", "p2"]));
    expect(left.netns).toHaveLength(4);
    expect(left.leases).toHaveLength(2);
    expect(left.ports).toEqual(["61000"]);
    expect((await spareMounts(workDir)).length).toBeGreaterThanOrEqual(2);
    expect(vethsWithPrefix(cellNames(workDir).spareVethPrefix).length).toBeGreaterThanOrEqual(2);

    const restarted = await startCellNetwork({ workDir, logger: silent });
    try {
      expect(await leftovers(workDir)).toEqual(NONE);
      // A cell makes spares only once it has used one: these would be the killed cell's.
      expect(await spareMounts(workDir)).toEqual([]);
      expect(vethsWithPrefix(restarted.names.spareVethPrefix)).toEqual([]);
      expect(existsSync(`/sys/class/net/${restarted.bridge}`)).toBe(true);
    } finally {
      await restarted.close();
    }
    expect(existsSync(`/sys/class/net/${restarted.bridge}`)).toBe(false);
    expect(listTable("inet", restarted.names.table)).toBe("");
  }, 60_000);
});

describe("pools", () => {
  it("two cells get distinct bridges and pools that do not overlap", async () => {
    const a = await startCellNetwork({ workDir: path.join(dir, "a"), logger: silent });
    const b = await startCellNetwork({ workDir: path.join(dir, "b"), logger: silent });
    try {
      expect(a.bridge).not.toBe(b.bridge);
      expect(a.pool).not.toBe(b.pool);
      expect(a.pool).toMatch(/^10\.[0-9.]+\/22$/);
      // A third cell asked for the first one's pool is refused, naming the clash.
      await expect(startCellNetwork({ workDir: path.join(dir, "c"), cidr: a.pool, logger: silent })).rejects.toThrow(
        new NetworkConfigError(`--network-cidr ${a.pool} clashes with the machine's route(s) ${a.pool} on ${a.bridge}; choose another range`),
      );
      // `diego cell` says so in one line and exits 2, before it connects anywhere.
      const cli = spawnSync(
        process.execPath,
        ["bin/diego.js", "cell", "--nats", "nats://127.0.0.1:1", "--data-dir", path.join(dir, "cli"), "--cell-id", "clash", "--network-cidr", a.pool, "--log-level", "warn"],
        { encoding: "utf8", timeout: 30_000 },
      );
      expect({ status: cli.status, stderr: cli.stderr }).toEqual({
        status: 2,
        stderr: `diego cell: --network-cidr ${a.pool} clashes with the machine's route(s) ${a.pool} on ${a.bridge}; choose another range\n`,
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["--network-cidr without a prefix", { cidr: "10.0.0.0" }, "--network-cidr must be an IPv4 CIDR from /12 to /29, got '10.0.0.0'"],
    ["--network-cidr with host bits", { cidr: "10.0.0.1/22" }, "--network-cidr '10.0.0.1/22' has host bits set (network is 10.0.0.0/22)"],
    ["--network-cidr too large", { cidr: "10.0.0.0/8" }, "--network-cidr must be an IPv4 CIDR from /12 to /29, got '10.0.0.0/8'"],
    ["--host-ports reversed", { hostPorts: "62000-61000" }, "--host-ports must be FIRST-LAST within 1-65535, got '62000-61000'"],
    ["--cell-address not an address", { cellAddress: "cell.example" }, "--cell-address must be an IPv4 address, got 'cell.example'"],
    ["--dns-servers not addresses", { dnsServers: ["1.1.1.1", "dns"] }, "--dns-servers must be IPv4 addresses, got 'dns'"],
  ])("refuses %s, naming it", async (_what, bad, message) => {
    await expect(startCellNetwork({ workDir: path.join(dir, "bad"), logger: silent, ...bad })).rejects.toThrow(new NetworkConfigError(message));
  });
});
