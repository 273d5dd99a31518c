import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { DIEGO_BIN, spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid, type RestClient } from "./rest-client.js";
import { connectStore } from "./store-client.js";
import { rawNatsSession } from "../nats/raw-nats.js";

// Task state lives only in NATS JetStream (file storage): receptors are stateless processes that
// can die at any moment, and nats-server itself can restart, without losing a task or a field.

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function diego(args: string[]): Promise<DiegoProcess> {
  const p = await spawnDiego(args);
  // SIGTERM first: `diego up` then stops its nats-server child, which a SIGKILL would orphan.
  cleanups.push(async () => {
    const force = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
    await p.kill("SIGTERM");
    clearTimeout(force);
  });
  return p;
}

/** The receptor's address from its ready line (it must be the real port, not 0). */
function listenAddress(readyLine: string): string {
  const m = /ready on (127\.0\.0\.1:(\d+))/.exec(readyLine);
  expect(m, readyLine).not.toBeNull();
  expect(Number(m![2])).toBeGreaterThan(0);
  return m![1]!;
}

function taskBody(guid: string, i: number): Record<string, unknown> {
  return {
    task_guid: guid,
    domain: `durable-${i % 3}`,
    stack: "lucid64",
    root_fs: i % 2 ? "docker:///org/image#v2" : "preloaded:lucid64",
    env: [{ name: "I", value: String(i) }],
    cpu_weight: 1 + (i % 100),
    disk_mb: 100 * i,
    memory_mb: 64 + i,
    privileged: i % 2 === 0,
    action: { serial: { actions: [{ run: { path: "/bin/echo", args: [`task ${i}`], user: "vcap" } }, { try: { action: { run: { path: "/bin/false" } } } }] } },
    result_file: "/tmp/result",
    completion_callback_url: `http://127.0.0.1:9/cb/${i}`,
    log_guid: `log-${i}`,
    log_source: "DURABLE",
    annotation: `annotation ${"x".repeat(i)}`,
    security_group_rules: [{ protocol: "tcp", destination: "10.0.0.0/8", port_range: { start: 1, end: 1000 + i } }],
  };
}

/** Creates tasks in every state: PENDING, RUNNING, COMPLETED (failed and not), cancelled. */
async function createTasks(api: RestClient, natsUrl: string, count: number): Promise<string[]> {
  const guids = Array.from({ length: count }, () => uniqueGuid("durable"));
  for (const [i, guid] of guids.entries()) expect((await api.createTask(taskBody(guid, i))).status).toBe(201);
  const cell = await connectStore(natsUrl, "durability-cell");
  try {
    await cell.run(guids[1]!, "cell-a");
    await cell.finish(guids[2]!, "cell-a", { failed: false, failureReason: "", result: "forty-two" });
    await cell.finish(guids[3]!, "cell-b", { failed: true, failureReason: "Exited with status 3", result: "" });
  } finally {
    await cell.close();
  }
  expect((await api.cancelTask(guids[4]!)).status).toBe(200);
  return guids;
}

async function snapshot(api: RestClient, guids: string[]): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const guid of guids) {
    const reply = await api.getTask(guid);
    expect(reply.status).toBe(200);
    texts.set(guid, reply.text);
  }
  return texts;
}

async function expectSameTasks(api: RestClient, before: Map<string, string>): Promise<void> {
  // Every field, created_at digits included, byte for byte.
  expect(await snapshot(api, [...before.keys()])).toEqual(before);
  const listed = JSON.parse((await api.request("GET", "/v1/tasks")).text) as Array<{ task_guid: string }>;
  expect(listed.map((t) => t.task_guid).sort()).toEqual([...before.keys()].sort());
}

describe("a receptor run as its own process", () => {
  it("listens on the port the OS picked for --listen 127.0.0.1:0 and says so in its ready line", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.dispose());
    const receptor = await diego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"]);
    const api = createRestClient(`http://${listenAddress(receptor.readyLine)}`);
    const reply = await api.request("GET", "/v1/tasks");
    expect({ status: reply.status, text: reply.text }).toEqual({ status: 200, text: "[]" });
  });

  it("loses nothing when it is killed with SIGKILL and nats-server is stopped and restarted", async () => {
    let nats: TestNats = await startNats();
    cleanups.push(() => nats.dispose());
    const first = await diego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"]);
    const firstApi = createRestClient(`http://${listenAddress(first.readyLine)}`);
    const guids = await createTasks(firstApi, nats.url, 12);
    const before = await snapshot(firstApi, guids);
    expect(JSON.parse(before.get(guids[1]!)!)).toMatchObject({ state: "RUNNING", cell_id: "cell-a" });

    await first.kill("SIGKILL");
    expect(first.child.signalCode).toBe("SIGKILL");
    await nats.stop();
    nats = await nats.restart();

    const second = await diego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"]);
    const api = createRestClient(`http://${listenAddress(second.readyLine)}`);
    await expectSameTasks(api, before);

    // And the tasks carry on where they were.
    expect((await api.cancelTask(guids[0]!)).status).toBe(200);
    expect((await api.deleteTask(guids[2]!)).status).toBe(200);
    expect((await api.getTask(guids[2]!)).status).toBe(404);
    expect((await api.createTask(taskBody(guids[5]!, 5))).status).toBe(409);
  });

  it("loses nothing when nats-server and the receptor both crash (SIGKILL) right after the writes", async () => {
    let nats: TestNats = await startNats();
    cleanups.push(() => nats.dispose());
    const first = await diego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"]);
    const firstApi = createRestClient(`http://${listenAddress(first.readyLine)}`);
    const guids = await createTasks(firstApi, nats.url, 8);
    const before = await snapshot(firstApi, guids);

    await Promise.all([first.kill("SIGKILL"), nats.kill()]);
    nats = await nats.restart();
    const second = await diego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"]);
    await expectSameTasks(createRestClient(`http://${listenAddress(second.readyLine)}`), before);
  });
});

/** Pids of the live children of `pid` named `name`, from /proc. */
async function childPids(pid: number, name: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid ...
    const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(text);
    if (m && m[1] === name && Number(m[3]) === pid && m[2] !== "Z") found.push(Number(entry));
  }
  return found;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("diego up", () => {
  it("starts nats-server and the API in one command, serves the REST lifecycle, and stops cleanly on SIGTERM", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-up-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const args = ["up", "--data-dir", dataDir, "--nats-port", "0", "--listen", "127.0.0.1:0"];

    const up = await diego(args);
    const natsPort = Number(/nats:\/\/127\.0\.0\.1:(\d+)/.exec(up.readyLine)?.[1]);
    expect(natsPort).toBeGreaterThan(0);
    // Its nats-server admits only holders of the credentials in the data dir (test/nats/credentials.test.ts).
    expect(await rawNatsSession(natsPort, "CONNECT {}\r\nPING\r\n")).toBe("-ERR 'Authorization Violation'\r\n");
    const natsPids = await childPids(up.child.pid!, "nats-server");
    expect(natsPids).toHaveLength(1);
    expect((await stat(path.join(dataDir, "nats"))).isDirectory()).toBe(true);

    const api = createRestClient(`http://${listenAddress(up.readyLine)}`);
    const guid = uniqueGuid("up");
    const kept = uniqueGuid("up-kept");
    // No callback here: `up` runs a dispatcher that would take completed tasks away.
    const body = (g: string): Record<string, unknown> => ({
      task_guid: g,
      domain: "up",
      stack: "lucid64",
      action: { run: { path: "/bin/sleep", args: ["600"] } },
      annotation: "kept across restarts",
    });
    expect((await api.createTask(body(guid))).status).toBe(201);
    expect((await api.createTask(body(kept))).status).toBe(201);
    const fresh = JSON.parse((await api.getTask(guid)).text) as { task_guid: string; state: string };
    expect(fresh.task_guid).toBe(guid);
    // PENDING, or already placed if `up` brought a cell along.
    expect(["PENDING", "CLAIMED", "RUNNING"]).toContain(fresh.state);
    expect((await api.cancelTask(guid)).status).toBe(200);
    expect(JSON.parse((await api.getTask(guid)).text)).toMatchObject({ state: "COMPLETED", failure_reason: "task was cancelled" });
    expect((await api.deleteTask(guid)).status).toBe(200);
    expect((await api.getTask(guid)).status).toBe(404);
    expect((await api.cancelTask(kept)).status).toBe(200);
    const keptText = (await api.getTask(kept)).text;

    // A second `up` on the same data dir refuses, and leaves the first one's nats-server alone.
    const second = await promisify(execFile)(process.execPath, [DIEGO_BIN, ...args], { timeout: 20_000 }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(second?.code).toBe(1);
    expect(second?.stderr).toContain(`diego up: the NATS store in ${path.join(dataDir, "nats")} is in use by a running diego up (pid ${up.child.pid})`);
    expect(isAlive(natsPids[0]!)).toBe(true);
    expect((await api.getTask(kept)).text).toBe(keptText);

    await up.kill("SIGTERM");
    expect({ code: up.child.exitCode, signal: up.child.signalCode }).toEqual({ code: 0, signal: null });
    expect(isAlive(natsPids[0]!)).toBe(false);

    // Same data dir again: the task it kept is still there, unchanged.
    const again = await diego(args);
    const api2 = createRestClient(`http://${listenAddress(again.readyLine)}`);
    expect((await api2.getTask(kept)).text).toBe(keptText);
    expect((await api2.getTask(guid)).status).toBe(404);
    await again.kill("SIGTERM");
    expect(again.child.exitCode).toBe(0);
  });
});
