import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogMessageSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { connectNats, subjects } from "../../src/nats/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => (off(), reject(new Error(`timed out waiting for ${what}`))), timeoutMs);
    const off = cluster.index.subscribe(() => {
      if (predicate()) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

const stateOf = (guid: string) => cluster.index.get(guid)?.record.task?.state;

describe("cancel and failover", () => {
  it("cancelling a running task kills its container at once and keeps the cancel outcome", async () => {
    await cluster.createTask({
      task_guid: "cancel-running",
      domain: "cells",
      stack: "lucid64",
      action: { run: { path: "/bin/sleep", args: ["100"] } },
    });
    await waitFor(() => stateOf("cancel-running") === TaskState.RUNNING, "RUNNING");
    const cell = cluster.cells[0]!;
    await waitFor(() => cell.running().includes("cancel-running"), "the cell to run it").catch(() => undefined);
    const started = Date.now();
    const res = await fetch(`${cluster.url}/v1/tasks/cancel-running/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!cell.running().includes("cancel-running")) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
    // The kill is immediate (SIGKILL); the bound is loose because a loaded CI machine also pays
    // for the container's removal here. A process that was not killed would run for 100 s.
    expect(Date.now() - started).toBeLessThan(5000);
    const t = await cluster.getTask("cancel-running");
    expect(t).toMatchObject({ state: "COMPLETED", failed: true, failure_reason: "task was cancelled", result: "" });
  });

  it("streams every line with the task's log_guid and source names, in order", async () => {
    const nc = await connectNats({ url: cluster.nats.url, name: "log-reader" });
    const lines: Array<{ source: string; message: string; stream: number }> = [];
    const sub = nc.subscribe(subjects.logs("logs-e2e"), {
      callback: (_e, m) => {
        const l = fromBinary(LogMessageSchema, m.data);
        lines.push({ source: l.sourceName, message: l.message, stream: l.stream });
      },
    });
    await nc.flush();
    await cluster.createTask({
      task_guid: "logs-e2e",
      domain: "cells",
      stack: "lucid64",
      log_guid: "logs-e2e",
      log_source: "APP",
      action: {
        serial: {
          actions: [
            { run: { path: "/bin/sh", args: ["-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2"] } },
            { run: { path: "/bin/echo", args: ["from stg"], log_source: "STG" } },
          ],
        },
      },
    });
    const done = await cluster.waitCompleted("logs-e2e");
    expect(done.failed).toBe(false);
    await nc.flush();
    sub.unsubscribe();
    const app = lines.filter((l) => l.source === "APP" && l.stream === 1).map((l) => l.message);
    expect(app.slice(0, 5)).toEqual(["line 1", "line 2", "line 3", "line 4", "line 5"]);
    expect(lines).toContainEqual({ source: "APP", message: "oops", stream: 2 });
    expect(lines).toContainEqual({ source: "STG", message: "from stg", stream: 1 });
    expect(app).toContain("Exit status 0");
    await nc.drain();
  });

  it("a standby auctioneer takes over when the active one stops", async () => {
    const standby = await cluster.addAuctioneer();
    const active = cluster.auctioneers[0]!;
    expect(active.isLeader()).toBe(true);
    expect(standby.isLeader()).toBe(false);
    await active.stop();
    cluster.auctioneers.splice(0, 1);
    await cluster.createTask({
      task_guid: "after-failover",
      domain: "cells",
      stack: "lucid64",
      action: { run: { path: "/bin/true" } },
    });
    const done = await cluster.waitCompleted("after-failover", 20_000);
    expect(done.failed).toBe(false);
    expect(standby.isLeader()).toBe(true);
  });
});
