import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CELL_DISAPPEARED_REASON } from "../../src/converger/index.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { cellLayout, cleanupCell, createProcessSet, openObserver, sleep, until, type Observer } from "../faults/fault-support.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { freePort } from "../fixtures/ports.js";
import { removeDataDir } from "../fixtures/data-dir.js";

// nats-server frozen with SIGSTOP for 10 s while tasks run, then resumed: its clients keep their
// TCP connections and see only requests that go unanswered (no disconnect), then a flood of late
// replies and heartbeats. Every task still finishes, and none fails: the cell was alive all along.

const CELL_ID = "paused-cell";
const TASKS = 12;

let nats: TestNats;
let dataDir: string;
let receptor: string;
let observer: Observer;
const procs = createProcessSet();

beforeAll(async () => {
  nats = await startNats();
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-paused-"));
  const common = ["--nats", nats.url, "--cell-ttl", "2s"];
  const port = await freePort();
  receptor = `http://127.0.0.1:${port}`;
  await procs.spawn(["converger", ...common, "--lock-ttl", "1500ms", "--converge-interval", "500ms", "--kick-interval", "2s"]);
  await Promise.all([
    procs.spawn(["auctioneer", ...common, "--lock-ttl", "1500ms"]),
    procs.spawn(["receptor", ...common, "--listen", `127.0.0.1:${port}`]),
    procs.spawn(["cell", ...common, "--cell-id", CELL_ID, "--data-dir", dataDir, "--memory-mb", "2048", "--disk-mb", "8192", "--containers", "32"]),
  ]);
  observer = await openObserver(nats.url, "paused-observer", "paused-logs");
}, 60_000);

afterAll(async () => {
  if (nats?.pid) process.kill(nats.pid, "SIGCONT");
  await procs.killAll();
  await cleanupCell(cellLayout(dataDir, CELL_ID)).catch(() => undefined);
  await observer?.close();
  await nats?.dispose();
  if (dataDir) await removeDataDir(dataDir);
}, 60_000);

describe("nats-server paused with SIGSTOP for 10 s", () => {
  it("every task finishes, none failed, once it resumes", async () => {
    const guids = Array.from({ length: TASKS }, (_, i) => `paused-${i}`);
    for (const [i, guid] of guids.entries()) {
      const res = await fetch(`${receptor}/v1/tasks`, {
        method: "POST",
        body: JSON.stringify({
          task_guid: guid,
          domain: "paused",
          stack: "lucid64",
          memory_mb: 16,
          // Some finish while the server is frozen, some after.
          action: { run: { path: "/bin/sh", args: ["-c", `sleep ${1 + (i % 4) * 3}`] } },
        }),
      });
      expect(res.status).toBe(201);
    }
    const { index } = observer;
    await until("tasks running", () => guids.filter((g) => index.get(g)?.state === TaskState.RUNNING).length >= TASKS / 2, 30_000);

    process.kill(nats.pid, "SIGSTOP");
    await sleep(10_000);
    process.kill(nats.pid, "SIGCONT");

    await until("every task completed", () => guids.every((g) => index.get(g)?.state === TaskState.COMPLETED), 60_000, 200);
    const outcomes = guids.map((g) => index.get(g)!.record.task!).map((t) => `${t.taskGuid}: ${t.failed ? t.failureReason : "ok"}`);
    expect(outcomes.filter((o) => o.includes(CELL_DISAPPEARED_REASON))).toEqual([]);
    expect(outcomes.filter((o) => !o.endsWith(": ok"))).toEqual([]);
  }, 120_000);
});
