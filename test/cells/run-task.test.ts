import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

const task = (guid: string, action: unknown, extra: Record<string, unknown> = {}) => ({
  task_guid: guid,
  domain: "cells-test",
  stack: "lucid64",
  action,
  ...extra,
});

describe("a task through the whole system", () => {
  it("is placed, claimed, run in a container and completed with its result", async () => {
    const res = await cluster.createTask(
      task("e2e-result", { run: { path: "/bin/sh", args: ["-c", "echo $GREETING > /tmp/out"] } }, {
        env: [{ name: "GREETING", value: "hello from the container" }],
        result_file: "/tmp/out",
      }),
    );
    expect(res.status).toBe(201);
    const done = await cluster.waitCompleted("e2e-result");
    expect(done).toMatchObject({ state: "COMPLETED", failed: false, failure_reason: "", result: "hello from the container\n" });
  });

  it("reports a failing process with its exit status", async () => {
    await cluster.createTask(task("e2e-exit", { run: { path: "/bin/sh", args: ["-c", "exit 3"] } }));
    const done = await cluster.waitCompleted("e2e-exit");
    expect(done).toMatchObject({ failed: true, failure_reason: "Exited with status 3" });
  });

  it("fails a task no cell can serve with `found no compatible cell`", async () => {
    await cluster.createTask(task("e2e-nostack", { run: { path: "/bin/true" } }, { stack: "windows2012" }));
    const done = await cluster.waitCompleted("e2e-nostack");
    expect(done).toMatchObject({ failed: true, failure_reason: "found no compatible cell" });
  });

  it("fails a task larger than every cell with `insufficient resources`", async () => {
    await cluster.createTask(task("e2e-huge", { run: { path: "/bin/true" } }, { memory_mb: 1_000_000 }));
    const done = await cluster.waitCompleted("e2e-huge");
    expect(done).toMatchObject({ failed: true, failure_reason: "insufficient resources" });
  });
});
