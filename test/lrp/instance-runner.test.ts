import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { InvalidLrpInstanceError, startLrpInstance, type LrpRunnerDeps } from "../../cell-agent/src/lrp/index.js";
import { createStartQueue } from "../../cell-agent/src/sandbox/index.js";
import { ActionSchema } from "../../src/gen/diego/v1/actions_pb.js";
import { mountsUnder } from "../sandbox/fixtures/sandbox-fixture.js";
import { rule } from "../network/net-fixture.js";
import { listTable } from "../network/test-host.js";
import type { RunningInfo } from "../../cell-agent/src/lrp/index.js";
import { setupLrpFixture, sh, type LrpFixture, type Observed } from "./lrp-fixture.js";

// LRP instances in real runc containers with the cell's network: RUNNING only after the
// monitor, published ports reached from the host, the 2015 crash reasons, environment, logs
// with the instance index, stop with a grace period, and nothing left afterwards.

let fx: LrpFixture;

beforeAll(async () => {
  fx = await setupLrpFixture();
}, 60_000);

afterAll(async () => {
  await fx?.cleanup();
}, 60_000);

const HTTPD_SETUP = sh('mkdir -p /www && echo "page of instance $INSTANCE_INDEX" > /www/index.html', { logSource: "STG" });
const HTTPD = sh("exec httpd -f -v -p 8080 -h /www", { logSource: "APP" });
// Debian's static busybox wget segfaults with -T: busybox timeout bounds it instead.
const HTTP_MONITOR = sh("timeout 1 wget -q -O /dev/null http://127.0.0.1:8080/ && echo healthcheck passed", { logSource: "HEALTH" });
const exitStatus = (source: string, status: number) => (m: { sourceName: string; message: string }) =>
  m.sourceName === source && m.message === `Exit status ${status}`;

async function get(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.text();
}

/** Everything of an instance that must be gone once it ended. */
async function leftovers(o: Observed, info?: RunningInfo): Promise<string[]> {
  const found: string[] = [];
  const id = o.instance.containerId;
  const containers = path.join(fx.workDir, "containers");
  const has = async (dir: string, name: string) => (await readdir(dir).catch(() => [] as string[])).includes(name);
  if (await has(path.join(containers, "containers"), id)) found.push("bundle");
  if (await has(path.join(containers, "state"), id)) found.push("runtime state");
  if (await has(path.join(fx.workDir, "network", "netns"), id)) found.push("network namespace");
  // Leases and host port reservations are files naming the container.
  for (const kind of ["leases", "ports"]) {
    const dir = path.join(fx.workDir, "network", kind);
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if ((await readFile(path.join(dir, f), "utf8").catch(() => "")).startsWith(id)) found.push(`${kind} ${f}`);
    }
  }
  if ((await mountsUnder(containers)).some((m) => m.includes(id))) found.push("mounts");
  if ((await cgroupsNamed(id)).length > 0) found.push("cgroups");
  if ((await loopBackingFiles()).some((f) => f.includes(id))) found.push("disk loop device");
  const table = listTable("inet", fx.network.names.table);
  for (const p of info?.ports ?? []) if (table.includes(`dport ${p.host_port} `)) found.push(`forwarding of host port ${p.host_port}`);
  return found;
}

/**
 * leftovers() once teardown has settled: a disk's loop device is auto-cleared by the kernel when
 * the last reference to its filesystem goes, which after a lazy unmount (a process of the
 * container not yet reaped) can come a moment after destroy() returned. Anything else left is
 * reported at once.
 */
async function leftoversAfterStop(o: Observed, info?: RunningInfo): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const found = await leftovers(o, info);
    if (found.length !== 1 || found[0] !== "disk loop device" || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the loop devices hold (disk_mb images are loop-mounted). */
async function loopBackingFiles(): Promise<string[]> {
  const devices = (await readdir("/sys/block")).filter((d) => d.startsWith("loop"));
  const files = await Promise.all(devices.map((d) => readFile(`/sys/block/${d}/loop/backing_file`, "utf8").catch(() => "")));
  return files.map((f) => f.trim()).filter(Boolean);
}

async function cgroupsNamed(id: string): Promise<string[]> {
  const { spawnSync } = await import("node:child_process");
  if (!existsSync("/sys/fs/cgroup/memory/diego")) return [];
  // Other containers' cgroups come and go while find walks the tree (find then exits 1): what it
  // printed is still every directory it saw, ours included.
  const out = spawnSync("find", ["/sys/fs/cgroup/memory/diego", "-type", "d", "-name", id], { encoding: "utf8" }).stdout;
  return out.split("\n").filter(Boolean);
}

describe("an httpd instance with a monitor", () => {
  it("becomes RUNNING once the monitor passes, serves its page through the published host port, logs with the index", async () => {
    const o = await fx.start({ index: 2, setup: HTTPD_SETUP, action: HTTPD, monitor: HTTP_MONITOR, ports: [8080], diskMb: 64, memoryMb: 64 });
    const info = await o.running;
    expect(info.address).toBe(fx.host.hostAddress);
    expect(info.ports).toEqual([{ container_port: 8080, host_port: expect.any(Number) }]);
    const hostPort = info.ports[0]!.host_port;
    expect(hostPort).toBeGreaterThanOrEqual(61000);
    expect(hostPort).toBeLessThanOrEqual(61999);
    // RUNNING means the monitor got an answer: the page is there at once, from the host.
    expect(await get(`http://${info.address}:${hostPort}/`)).toBe("page of instance 2\n");
    expect(o.instance.phase()).toBe("running");
    await o.waitForLogs(exitStatus("HEALTH/2", 0));
    expect(o.lines()).toContain("STG/2 stdout: Exit status 0");
    expect(o.lines()).toContain("HEALTH/2 stdout: healthcheck passed");
    // httpd -v logs each request on stderr under the action's source: ours came from the host.
    await o.waitForLogs((m) => m.sourceName === "APP/2" && m.stream === 2 && m.message.includes(`${fx.host.hostAddress}]`));

    // What must go with it is there while it runs.
    expect(await leftovers(o, info)).toEqual(
      expect.arrayContaining(["bundle", "runtime state", "network namespace", `ports ${hostPort}`, "mounts", "cgroups", "disk loop device", `forwarding of host port ${hostPort}`]),
    );

    await o.instance.stop();
    expect(o.events).toEqual(["running", "stopped"]);
    await expect(get(`http://${info.address}:${hostPort}/`)).rejects.toThrow();
    expect(await leftoversAfterStop(o, info)).toEqual([]);
  });

  it("keeps checking every healthy interval once RUNNING and crashes on the first failed check", async () => {
    // Checks 1-3 pass, the 4th fails (as when vizzini's grace deletes its up file).
    const countedCheck = sh("n=$(( $(cat /tmp/checks 2>/dev/null || echo 0) + 1 )); echo $n > /tmp/checks; test $n -le 3", { logSource: "HEALTH" });
    const o = await fx.start({ setup: HTTPD_SETUP, action: HTTPD, monitor: countedCheck, ports: [8080] });
    const info = await o.running;
    expect(await o.crashed).toBe("Exited with status 1");
    const passed = o.logs.filter(exitStatus("HEALTH/0", 0));
    expect(passed).toHaveLength(3);
    // Once healthy, the next check waits the healthy interval (300 ms here) after the last one.
    const gapsMs = passed.slice(1).map((m, i) => Number(m.timestamp - passed[i]!.timestamp) / 1e6);
    for (const gap of gapsMs) expect(gap).toBeGreaterThanOrEqual(300);
    expect(o.events).toEqual(["running", "crashed"]);
    // The crash is reported once the processes are dead: the old address no longer answers.
    await expect(get(`http://${info.address}:${info.ports[0]!.host_port}/`)).rejects.toThrow();
    await o.instance.done;
    expect(await leftoversAfterStop(o, info)).toEqual([]);
  });
});

describe("several instances of one process", () => {
  it("run at once on one cell, each RUNNING with its own host port serving its own index", async () => {
    const processGuid = "lrp-three";
    const all = await Promise.all(
      [0, 1, 2].map((index) => fx.start({ processGuid, index, setup: HTTPD_SETUP, action: HTTPD, monitor: HTTP_MONITOR, ports: [8080] })),
    );
    const infos = await Promise.all(all.map((o) => o.running));
    expect(new Set(all.map((o) => o.instance.containerId)).size).toBe(3);
    expect(new Set(infos.map((i) => i.ports[0]!.host_port)).size).toBe(3);
    const pages = await Promise.all(infos.map((i) => get(`http://${i.address}:${i.ports[0]!.host_port}/`)));
    expect(pages).toEqual(["page of instance 0\n", "page of instance 1\n", "page of instance 2\n"]);
    // Scale down to one: the others go, the survivor keeps serving.
    await Promise.all([all[1]!.instance.stop(), all[2]!.instance.stop()]);
    expect(await get(`http://${infos[0]!.address}:${infos[0]!.ports[0]!.host_port}/`)).toBe("page of instance 0\n");
    await all[0]!.instance.stop();
    for (const [i, o] of all.entries()) expect(await leftoversAfterStop(o, infos[i])).toEqual([]);
  });
});

describe("a monitor that never passes", () => {
  it("keeps the instance from RUNNING and never crashes it without start_timeout", async () => {
    const o = await fx.start({ action: sh("exec sleep 1000", { logSource: "APP" }), monitor: sh("exit 1", { logSource: "HEALTH" }) });
    // Ten failed checks (100 ms apart): still starting, nothing reported.
    await o.waitForLogs(exitStatus("HEALTH/0", 1), 10);
    const failed = o.logs.filter(exitStatus("HEALTH/0", 1));
    for (let i = 1; i < failed.length; i++) expect(Number(failed[i]!.timestamp - failed[i - 1]!.timestamp) / 1e6).toBeGreaterThanOrEqual(100);
    expect(o.events).toEqual([]);
    expect(o.instance.phase()).toBe("starting");
    await o.instance.stop();
    expect(o.events).toEqual(["stopped"]);
  });

  it("crashes the instance once start_timeout passes, with the check's failure and the 2015 log line", async () => {
    const started = Date.now();
    const o = await fx.start({ action: sh("exec sleep 1000"), monitor: sh("exit 1", { logSource: "HEALTH" }), startTimeoutSec: 1 });
    expect(await o.crashed).toBe("Exited with status 1");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(o.events).toEqual(["crashed"]);
    expect(o.lines()).toContain("LOG/0 stderr: Timed out after 1s: health check never passed.");
    await o.instance.done;
    expect(await leftoversAfterStop(o)).toEqual([]);
  });

  it("does not crash when the action exits 0 before the monitor ever passed (daemon)", async () => {
    const o = await fx.start({ action: sh("echo forked", { logSource: "APP" }), monitor: sh("exit 1", { logSource: "HEALTH" }) });
    await o.waitForLogs(exitStatus("APP/0", 0));
    await o.waitForLogs(exitStatus("HEALTH/0", 1), 5);
    expect(o.events).toEqual([]);
    await o.instance.stop();
    expect(o.events).toEqual(["stopped"]);
  });
});

describe("crashes", () => {
  it("an action without a monitor is RUNNING when it starts; exiting 0 crashes it with an empty reason", async () => {
    const o = await fx.start({ action: sh("sleep 0.3", { logSource: "APP" }) });
    await o.running;
    expect(await o.crashed).toBe("");
    expect(o.events).toEqual(["running", "crashed"]);
    expect(o.lines()).toContain("APP/0 stdout: Exit status 0");
  });

  it("exiting 17 crashes it with 'Exited with status 17', with or without a monitor", async () => {
    const plain = await fx.start({ action: sh("sleep 0.2; exit 17") });
    expect(await plain.crashed).toBe("Exited with status 17");
    expect(plain.events).toEqual(["running", "crashed"]);

    // The action exits 17 once the monitor has passed twice.
    const monitored = await fx.start({
      action: sh("while ! test -e /tmp/passed-twice; do sleep 0.05; done; exit 17"),
      monitor: sh("if test -e /tmp/passed; then touch /tmp/passed-twice; fi; touch /tmp/passed"),
    });
    await monitored.running;
    // The monitor is cancelled; its cancellation is no part of the reason.
    expect(await monitored.crashed).toBe("Exited with status 17");
    expect(monitored.events).toEqual(["running", "crashed"]);
  });

  it("an action that exits 0 after the monitor passed is a daemon: the instance stays RUNNING", async () => {
    const o = await fx.start({ setup: HTTPD_SETUP, action: sh("httpd -p 8080 -h /www", { logSource: "APP" }), monitor: HTTP_MONITOR, ports: [8080] });
    const info = await o.running;
    await o.waitForLogs(exitStatus("APP/0", 0));
    await o.waitForLogs(exitStatus("HEALTH/0", 0), 4);
    expect(o.events).toEqual(["running"]);
    expect(await get(`http://${info.address}:${info.ports[0]!.host_port}/`)).toBe("page of instance 0\n");
    await o.instance.stop();
    expect(o.events).toEqual(["running", "stopped"]);
    expect(await leftoversAfterStop(o, info)).toEqual([]);
  });

  it("a failing setup crashes it with the setup's failure, before the action runs", async () => {
    const o = await fx.start({ setup: sh("exit 3"), action: sh("echo never", { logSource: "APP" }) });
    expect(await o.crashed).toBe("Exited with status 3");
    expect(o.events).toEqual(["crashed"]);
    expect(o.lines().some((l) => l.startsWith("APP/0"))).toBe(false);
  });

  it("going over memory_mb crashes it as out of memory", async () => {
    const o = await fx.start({ memoryMb: 16, action: sh("sleep 0.2; exec dd if=/dev/zero of=/dev/null bs=64M count=1") });
    await o.running;
    expect(await o.crashed).toBe("Exited with status 137 (out of memory)");
  });

  it("a root filesystem the cell lacks crashes it with 'failed to initialize container'", async () => {
    const o = await fx.start({ rootfs: "preloaded:fruitfs", action: sh("true"), ports: [8080] });
    expect(await o.crashed).toBe("failed to initialize container");
    await o.instance.done;
    expect(await leftoversAfterStop(o)).toEqual([]);
  });
});

describe("environment", () => {
  it("setup, action and monitor see the instance and network variables of 2015, PORT, and the LRP's env", async () => {
    const printEnv = (source: string) =>
      sh("env | grep -E '^(INSTANCE_|CF_INSTANCE_|PORT=|CONTAINER_LEVEL=|OVERRIDE=)' | sort", { logSource: source, env: [{ name: "OVERRIDE", value: "DAQUIRI" }] });
    const o = await fx.start({
      index: 3,
      env: [
        { name: "CONTAINER_LEVEL", value: "AARDVARK" },
        { name: "OVERRIDE", value: "BANANA" },
      ],
      ports: [8080, 5000],
      privileged: true,
      setup: printEnv("SETUP"),
      action: sh("exec sleep 1000"),
      monitor: printEnv("HEALTH"),
    });
    const info = await o.running;
    const [p8080, p5000] = info.ports;
    const expected = [
      `CF_INSTANCE_ADDR=${info.address}:${p8080!.host_port}`,
      `CF_INSTANCE_GUID=${o.spec.instanceGuid}`,
      "CF_INSTANCE_INDEX=3",
      `CF_INSTANCE_IP=${info.address}`,
      `CF_INSTANCE_PORT=${p8080!.host_port}`,
      `CF_INSTANCE_PORTS=[{"external":${p8080!.host_port},"internal":8080},{"external":${p5000!.host_port},"internal":5000}]`,
      "CONTAINER_LEVEL=AARDVARK",
      `INSTANCE_GUID=${o.spec.instanceGuid}`,
      "INSTANCE_INDEX=3",
      "OVERRIDE=DAQUIRI",
      "PORT=8080",
    ];
    const seen = (source: string) => o.logs.filter((m) => m.sourceName === source && !m.message.startsWith("Exit status")).map((m) => m.message);
    // The log lines of the check that passed may arrive just after the RUNNING report.
    await o.waitForLogs(exitStatus("HEALTH/3", 0));
    expect(seen("SETUP/3")).toEqual(expected);
    expect(seen("HEALTH/3").slice(0, expected.length)).toEqual(expected);
    await o.instance.stop();
  });

  it("without ports: PORT unset, CF_INSTANCE_PORT and _ADDR empty, CF_INSTANCE_PORTS []", async () => {
    const o = await fx.start({ action: sh("env | grep -E '^(PORT|CF_INSTANCE_P|CF_INSTANCE_A)' | sort; exec sleep 1000", { logSource: "APP" }) });
    await o.waitForLogs((m) => m.sourceName === "APP/0" && m.message.startsWith("CF_INSTANCE_PORTS"));
    expect(o.logs.map((m) => m.message)).toEqual(["CF_INSTANCE_ADDR=", "CF_INSTANCE_PORT=", "CF_INSTANCE_PORTS=[]"]);
    await o.instance.stop();
  });
});

describe("egress", () => {
  it("an instance reaches what its security_group_rules allow and nothing else", async () => {
    const target = `http://${fx.host.addresses[0]}:8080/`;
    const fetchOnce = sh(`timeout 2 wget -q -O - ${target} || echo FAILED; exec sleep 1000`, { logSource: "APP" });
    const allowed = await fx.start({
      action: fetchOnce,
      securityGroupRules: [rule({ protocol: "tcp", destinations: [fx.host.addresses[0]!], ports: [8080] })],
    });
    const denied = await fx.start({ action: fetchOnce });
    const out = (m: { sourceName: string; stream: number }) => m.sourceName === "APP/0" && m.stream === 1;
    await allowed.waitForLogs(out);
    await denied.waitForLogs(out);
    expect(allowed.logs.find(out)!.message).toBe(`hello from ${fx.host.addresses[0]}:8080`);
    expect(denied.logs.find(out)!.message).toBe("FAILED");
    await Promise.all([allowed.instance.stop(), denied.instance.stop()]);
  });
});

describe("stop", () => {
  it("sends SIGTERM first: a process that handles it ends cleanly well within the grace period", async () => {
    const o = await fx.start(
      { action: sh("trap 'echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.05; done", { logSource: "APP" }) },
      { stopGraceMs: 20_000 },
    );
    await o.running;
    await o.waitForLogs((m) => m.message === "started");
    const t0 = Date.now();
    await o.instance.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(o.lines()).toContain("APP/0 stdout: got TERM");
    expect(o.events).toEqual(["running", "stopped"]);
    expect(await leftoversAfterStop(o)).toEqual([]);
  });

  it("kills a process that ignores SIGTERM once the grace period is over", async () => {
    const o = await fx.start({ action: sh("trap '' TERM; echo started; while :; do sleep 0.05; done", { logSource: "APP" }), ports: [8080] }, { stopGraceMs: 1500 });
    const info = await o.running;
    await o.waitForLogs((m) => m.message === "started");
    const t0 = Date.now();
    await o.instance.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(15_000);
    expect(o.events).toEqual(["running", "stopped"]);
    expect(o.instance.phase()).toBe("stopped");
    expect(await leftoversAfterStop(o, info)).toEqual([]);
  });

  it("a stop right after RUNNING (the process may not exist yet) still gets SIGTERM to it", async () => {
    const o = await fx.start({ action: sh("exec sleep 1000") }, { stopGraceMs: 20_000 });
    await o.running;
    const t0 = Date.now();
    await o.instance.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(o.events).toEqual(["running", "stopped"]);
  });

  it("stopping an instance that is still starting never reports it RUNNING", async () => {
    const o = await fx.start({ action: sh("exec sleep 1000"), monitor: sh("exit 1") });
    const stopping = o.instance.stop();
    await stopping;
    expect(o.events).toEqual(["stopped"]);
    expect(await leftoversAfterStop(o)).toEqual([]);
  });
});

describe("starting with the container", () => {
  // No setup, no monitor, one run action: the action starts with the container (one runtime
  // invocation), as the only child of a minimal PID 1.
  const SLEEP = create(ActionSchema, { action: { case: "run", value: { path: "/bin/sleep", args: ["1000"] } } });

  it("a plain process with no SIGTERM handler still ends on a stop's SIGTERM, well within the grace period", async () => {
    const o = await fx.start({ action: SLEEP, ports: [8080] }, { stopGraceMs: 20_000 });
    const info = await o.running;
    const t0 = Date.now();
    await o.instance.stop();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(o.events).toEqual(["running", "stopped"]);
    expect(await leftoversAfterStop(o, info)).toEqual([]);
  });

  it("with one start slot, instances start one at a time; one stopped while waiting for the slot never runs", async () => {
    const slots = createStartQueue(1);
    const first = await fx.start({ action: SLEEP }, {}, { starts: slots });
    const second = await fx.start({ action: SLEEP, index: 1 }, {}, { starts: slots });
    const third = await fx.start({ action: SLEEP, index: 2 }, {}, { starts: slots });
    await third.instance.stop();
    expect(third.events).toEqual(["stopped"]);
    await first.running;
    // The second makes its container only now that the first's process runs.
    expect(second.events).toEqual([]);
    await second.running;
    await Promise.all([first.instance.stop(), second.instance.stop()]);
    for (const o of [first, second, third]) expect(await leftoversAfterStop(o)).toEqual([]);
  });
});

describe("input", () => {
  it("refuses a spec it cannot run, naming each problem", () => {
    const deps = {} as LrpRunnerDeps;
    const events = { onRunning() {}, onCrashed() {}, onStopped() {} };
    const bad = {
      processGuid: "has space",
      index: -1,
      instanceGuid: "ok",
      domain: "d",
      rootfs: "",
      action: sh("true"),
      env: [],
      ports: [8080, 70000],
      memoryMb: 0,
      diskMb: -5,
      cpuWeight: 0,
      privileged: false,
      startTimeoutSec: 0,
      logGuid: "",
      logSource: "",
      securityGroupRules: [],
    };
    expect(() => startLrpInstance(bad, deps, events)).toThrow(InvalidLrpInstanceError);
    expect(() => startLrpInstance(bad, deps, events)).toThrow("invalid LRP instance: process_guid, index, rootfs, ports, disk_mb");
  });
});
