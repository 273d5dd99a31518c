import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";

// `diego up` runs its cell in a Node process of its own by default (--cell-process own): tasks
// run, the cell's metrics show on up's /metrics, and the cell process ends with up, even when up
// is killed with SIGKILL.

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}, 60_000);

/** Live (not zombie) children of `pid` whose command line holds `marker`. */
async function childrenRunning(pid: number, marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const m = /^\d+ \(.*\) (\S) (\d+)/.exec(stat);
    if (!m || m[1] === "Z" || Number(m[2]) !== pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(marker)) found.push(Number(entry));
  }
  return found;
}

async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z /.test(stat);
}

async function waitCompleted(api: string, guid: string): Promise<Record<string, unknown>> {
  // The API's event stream says when the task changed; read the record after each change.
  const res = await fetch(`${api}/v1/events`);
  const reader = res.body!.getReader();
  try {
    for (;;) {
      const task = (await (await fetch(`${api}/v1/tasks/${guid}`)).json()) as Record<string, unknown>;
      if (task.state === "COMPLETED") return task;
      const { done } = await reader.read();
      if (done) throw new Error("event stream ended");
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

describe("diego up's cell process", () => {
  it("runs tasks in a cell process of its own that reports metrics through up and ends with up, even on SIGKILL", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-up-cell-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const up: DiegoProcess = await spawnDiego(["up", "--data-dir", dataDir, "--nats-port", "0", "--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0"]);
    cleanups.push(() => up.kill("SIGKILL"));
    const api = `http://${/ready on (\S+)/.exec(up.readyLine)![1]}`;

    const [cellPid, ...others] = await childrenRunning(up.child.pid!, "cell-child");
    expect(cellPid).toBeGreaterThan(0);
    expect(others).toEqual([]);

    const created = await fetch(`${api}/v1/tasks`, {
      method: "POST",
      body: JSON.stringify({ task_guid: "own-cell", domain: "up-cell", stack: "lucid64", action: { run: { path: "/bin/sh", args: ["-c", "echo hi > /tmp/out"] } }, result_file: "/tmp/out" }),
    });
    expect(created.status).toBe(201);
    expect(await waitCompleted(api, "own-cell")).toMatchObject({ state: "COMPLETED", failed: false, result: "hi\n" });

    // The cell's metrics live in its process; up's /metrics holds them.
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/^diego_cell_containers_starting_peak\{cell="[^"]+"\} 1$/m);
    expect(metrics).toMatch(/^diego_container_create_duration_seconds_count 1$/m);
    expect(metrics).toMatch(/^diego_api_requests_total\{/m);

    await up.kill("SIGKILL");
    await expect.poll(() => alive(cellPid!), { timeout: 30_000, interval: 100 }).toBe(false);
  }, 120_000);
});
