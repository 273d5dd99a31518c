import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { cellLayout, cleanupCell, until } from "../faults/fault-support.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { freePort } from "../fixtures/ports.js";
import { DIEGO_BIN } from "../fixtures/receptor.js";
import { removeDataDir } from "../fixtures/data-dir.js";

// A fleet started in any order: every process started while nothing listens on the NATS port
// waits (saying so in its log) instead of exiting, and joins once nats-server comes up; a task
// then runs end to end.

const CELL_ID = "late-cell";

let nats: TestNats | undefined;
let dataDir: string | undefined;
const children: Watched[] = [];

interface Watched {
  child: ChildProcess;
  stderr(): string;
  ready(): boolean;
  exited(): boolean;
}

/** `diego <args>`, watched from its first line (spawnDiego returns only once it is ready). */
function spawnWatched(args: string[]): Watched {
  const child = spawn(process.execPath, [DIEGO_BIN, ...args], {
    env: { ...process.env, DIEGO_LOG_LEVEL: "info", DIEGO_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  let out = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  const w = { child, stderr: () => err, ready: () => out.includes("ready"), exited: () => child.exitCode !== null || child.signalCode !== null };
  children.push(w);
  return w;
}

afterAll(async () => {
  await Promise.all(
    children.map(async (w) => {
      if (!w.exited()) {
        w.child.kill("SIGKILL");
        await new Promise((r) => w.child.once("exit", r));
      }
    }),
  );
  if (dataDir) await cleanupCell(cellLayout(dataDir, CELL_ID)).catch(() => undefined);
  await nats?.dispose();
  if (dataDir) await removeDataDir(dataDir);
}, 60_000);

describe("processes started before NATS", () => {
  it("wait for it with a log line, and join once it is up", async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-late-"));
    const natsPort = await freePort();
    const url = `nats://127.0.0.1:${natsPort}`;
    const common = ["--nats", url, "--cell-ttl", "2s"];
    const port = await freePort();
    const started = [
      spawnWatched(["receptor", ...common, "--listen", `127.0.0.1:${port}`]),
      spawnWatched(["converger", ...common, "--lock-ttl", "1500ms", "--converge-interval", "500ms"]),
      spawnWatched(["auctioneer", ...common, "--lock-ttl", "1500ms"]),
      spawnWatched(["dispatcher", ...common]),
      spawnWatched(["cell", ...common, "--cell-id", CELL_ID, "--data-dir", dataDir, "--memory-mb", "1024", "--disk-mb", "4096"]),
    ];

    // Nothing listens yet: each says it waits, and none exits.
    await until("every process to say it waits for NATS", () => started.every((w) => w.stderr().includes("NATS unreachable; waiting for it")), 60_000, 100);
    expect(started.filter((w) => w.exited()).map((w) => w.stderr())).toEqual([]);
    expect(started.filter((w) => w.ready())).toEqual([]);

    nats = await startNats(undefined, natsPort);
    await until("every process to be ready", () => started.every((w) => w.ready() || w.exited()), 60_000, 100);
    expect(started.filter((w) => w.exited()).map((w) => w.stderr())).toEqual([]);

    const res = await fetch(`http://127.0.0.1:${port}/v1/tasks`, {
      method: "POST",
      body: JSON.stringify({ task_guid: "late-task", domain: "late", stack: "lucid64", action: { run: { path: "/bin/true" } } }),
    });
    expect(res.status).toBe(201);
    let task: { state?: string; failed?: boolean } = {};
    await until(
      "the task to complete",
      async () => {
        task = (await (await fetch(`http://127.0.0.1:${port}/v1/tasks/late-task`)).json()) as typeof task;
        return task.state === "COMPLETED";
      },
      30_000,
      100,
    );
    expect(task.failed).toBe(false);
  }, 90_000);
});
