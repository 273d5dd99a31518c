import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { pushBusyboxImage, startRegistry, type TestRegistry } from "../fixtures/registry.js";
import { startRegistryProxy, type RegistryProxy } from "../images/registry-proxy.js";

// Docker images and limits through the whole system: what a user sees in the task's outcome.

let registry: TestRegistry;
let proxy: RegistryProxy;
let cluster: TestCluster;

beforeAll(async () => {
  registry = await startRegistry();
  // The recording proxy stands in for the network between the cell and the registry.
  proxy = await startRegistryProxy(registry.url);
  await pushBusyboxImage(registry, "tests/busybox", "v1", { env: ["PATH=/bin", "FROM_IMAGE=image", "OVERRIDE=image"], workingDir: "/tmp" });
  cluster = await startCluster({ cells: [{ dockerRegistry: proxy.url }] });
});
afterAll(async () => {
  await cluster?.stop();
  await proxy?.close();
  await registry?.stop();
});

const run = (guid: string, script: string, extra: Record<string, unknown> = {}) =>
  cluster.createTask({
    task_guid: guid,
    domain: "images-limits",
    stack: "lucid64",
    action: { run: { path: "/bin/sh", args: ["-c", script] } },
    result_file: "/tmp/result",
    ...extra,
  });

describe("docker images", () => {
  it("runs a task in an image from the registry, with the image's env and working directory under the task's", async () => {
    await run("img-env", "echo $FROM_IMAGE $OVERRIDE $(pwd) > /tmp/result", {
      root_fs: "docker:///tests/busybox#v1",
      env: [{ name: "OVERRIDE", value: "task" }],
    });
    const done = await cluster.waitCompleted("img-env");
    expect(done).toMatchObject({ failed: false, result: "image task /tmp\n" });
    expect(proxy.blobGets().length).toBeGreaterThan(0);
  });

  it("starts a second task of the same image without pulling again", async () => {
    const blobsBefore = proxy.blobGets().length;
    await run("img-again", "echo again > /tmp/result", { root_fs: `docker://${proxy.url}/tests/busybox#v1` });
    const done = await cluster.waitCompleted("img-again");
    expect(done).toMatchObject({ failed: false, result: "again\n" });
    expect(proxy.blobGets().length).toBe(blobsBefore);
  });

  it("fails a task whose image does not exist with a clear reason", async () => {
    await run("img-missing", "true", { root_fs: "docker:///tests/no-such-image#v1" });
    const done = await cluster.waitCompleted("img-missing");
    expect(done.failed).toBe(true);
    expect(done.failure_reason).toMatch(/image not found: .*tests\/no-such-image:v1/);
  });
});

describe("limits", () => {
  it("kills a task that exceeds memory_mb and says it ran out of memory", async () => {
    await run("oom", "head -c 200m /dev/zero | tail > /dev/null", { memory_mb: 32 });
    const done = await cluster.waitCompleted("oom");
    expect(done).toMatchObject({ failed: true, failure_reason: "Exited with status 137 (out of memory)" });
  });

  it("caps what a task writes at disk_mb", async () => {
    await run("disk-ok", "dd if=/dev/zero of=/tmp/f bs=1M count=4 2>/dev/null && echo ok > /tmp/result", { disk_mb: 16 });
    await run("disk-full", "dd if=/dev/zero of=/tmp/f bs=1M count=40 2>/tmp/result; tail -c 200 /tmp/result >&2; exit 1", { disk_mb: 16 });
    expect(await cluster.waitCompleted("disk-ok")).toMatchObject({ failed: false, result: "ok\n" });
    expect(await cluster.waitCompleted("disk-full")).toMatchObject({ failed: true, failure_reason: "Exited with status 1" });
  });

  it("contains a fork bomb and the cell keeps running tasks", async () => {
    await cluster.createTask({
      task_guid: "fork-bomb",
      domain: "images-limits",
      stack: "lucid64",
      action: { try: { action: { run: { path: "/bin/sh", args: ["-c", "b() { b | b & }; b; sleep 3"] } } } },
    });
    const bomb = await cluster.waitCompleted("fork-bomb", 60_000);
    expect(bomb.state).toBe("COMPLETED");
    await run("after-bomb", "echo alive > /tmp/result");
    expect(await cluster.waitCompleted("after-bomb")).toMatchObject({ failed: false, result: "alive\n" });
  });

  it("runs unprivileged tasks as root inside a user namespace that sees only its own processes", async () => {
    await run("userns", "echo $(id -u) $(ls /proc | grep -c '^[0-9]') > /tmp/result", { privileged: false });
    const done = await cluster.waitCompleted("userns");
    const [uid, procs] = String(done.result).trim().split(" ");
    expect(uid).toBe("0");
    expect(Number(procs)).toBeLessThan(10);
  });
});
