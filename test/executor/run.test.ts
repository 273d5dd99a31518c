import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executeTask } from "../../cell-agent/src/executor/index.js";
import { act, execute, startHarness, taskOf, type Harness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe("run action", () => {
  it("succeeds on exit 0, streams output under the task's log_source and ends with 'Exit status 0'", async () => {
    const { outcome, received } = await execute(h, taskOf(act.sh("echo one; echo two >&2; printf three"), { logSource: "APP" }));
    expect(outcome).toEqual({ failed: false, failureReason: "", result: "" });
    expect(received.lines()).toContain("APP stdout: one");
    expect(received.lines()).toContain("APP stderr: two");
    // The partial last line is flushed when the process ends, before the exit line.
    expect(received.lines().slice(-2)).toEqual(["APP stdout: three", "APP stdout: Exit status 0"]);
    const m = received.messages.find((x) => x.message === "one")!;
    expect(m.stream).toBe(1);
    expect(received.messages.find((x) => x.message === "two")!.stream).toBe(2);
    expect(m.timestamp).toBeGreaterThan(BigInt(Date.now() - 60_000) * 1_000_000n);
  });

  it("fails with 'Exited with status N' and writes 'Exit status N' to the LOG source by default", async () => {
    const { outcome, received } = await execute(h, taskOf(act.sh("exit 3")));
    expect(outcome).toEqual({ failed: true, failureReason: "Exited with status 3", result: "" });
    expect(received.lines()).toEqual(["LOG stdout: Exit status 3"]);
    expect(received.messages[0]!.taskGuid).toMatch(/^task-/);
  });

  it("uses the run's own log_source when set", async () => {
    const { received } = await execute(h, taskOf(act.sh("echo hi", { logSource: "STG" }), { logSource: "APP" }));
    expect(received.lines()).toEqual(["STG stdout: hi", "STG stdout: Exit status 0"]);
  });

  it("layers env: container (task) env first, then the run's env, later names win", async () => {
    const { received } = await execute(
      h,
      taskOf(act.sh('echo "A=$A B=$B C=$C"', { env: [{ name: "A", value: "run" }, { name: "C", value: "c1" }, { name: "C", value: "c2" }] })),
      { env: ["A=task", "B=task"] },
    );
    expect(received.texts()).toContain("A=run B=task C=c2");
  });

  it("honours dir, user (empty = root) and resource_limits.nofile", async () => {
    const { received } = await execute(
      h,
      taskOf(
        act.serial([
          act.sh('echo "$(pwd) $(id -u)"', { dir: "/tmp" }),
          act.sh('echo "$(id -un) $(id -u)"', { user: "vcap" }),
          act.sh("ulimit -n", { resourceLimits: { nofile: 321n } }),
        ]),
      ),
    );
    expect(received.texts()).toEqual(["/tmp 0", "Exit status 0", "vcap 2000", "Exit status 0", "321", "Exit status 0"]);
  });

  it("reports a process killed by the memory limit as out of memory", async () => {
    const { outcome, received } = await execute(h, taskOf(act.run("dd", ["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])), {
      memoryMb: 16,
    });
    expect(outcome.failureReason).toBe("Exited with status 137 (out of memory)");
    expect(received.texts()).toContain("Exit status 137 (out of memory)");
  });

  it("kills a running `sleep 100` at once on cancel", async () => {
    const controller = new AbortController();
    const marker = `marker-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const task = taskOf(act.sh(`echo started; sleep 100; echo ${marker}`));
    const sandbox = await h.sandbox();
    const { logs, received } = await h.logsFor(task);
    const running = executeTask(task, { sandbox, logs, signal: controller.signal });
    await waitFor(async () => {
      await h.nc.flush();
      return received.texts().includes("started");
    });
    expect(await hostProcessesWith(marker)).toBeGreaterThan(0);
    const started = Date.now();
    controller.abort();
    const outcome = await running;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(outcome).toEqual({ failed: true, failureReason: "task was cancelled", result: "" });
    expect(await hostProcessesWith(marker)).toBe(0);
  });
});

describe("result_file", () => {
  it("returns the file's content when the action succeeded", async () => {
    const { outcome } = await execute(h, taskOf(act.sh("printf 'the result' > /tmp/out"), { resultFile: "/tmp/out" }));
    expect(outcome).toEqual({ failed: false, failureReason: "", result: "the result" });
  });

  it("truncates the result to the first 10 KiB", async () => {
    const { outcome } = await execute(h, taskOf(act.sh("head -c 20000 /dev/zero | tr '\\0' x > /out"), { resultFile: "/out" }));
    expect(outcome.failed).toBe(false);
    expect(outcome.result).toBe("x".repeat(10240));
  });

  it("fails with 'failed to fetch result' when the file is missing", async () => {
    const { outcome } = await execute(h, taskOf(act.sh("true"), { resultFile: "/nope" }));
    expect(outcome).toEqual({ failed: true, failureReason: "failed to fetch result", result: "" });
  });

  it("does not read the result of a failed action", async () => {
    const { outcome } = await execute(h, taskOf(act.sh("echo data > /out; exit 1"), { resultFile: "/out" }));
    expect(outcome).toEqual({ failed: true, failureReason: "Exited with status 1", result: "" });
  });

  it("never follows a container symlink to a host file", async () => {
    const hostDir = await mkdtemp(path.join(os.tmpdir(), "host-secret-"));
    try {
      const secret = path.join(hostDir, "secret");
      await writeFile(secret, "HOST SECRET");
      const viaFile = await execute(h, taskOf(act.sh(`ln -s ${secret} /out`), { resultFile: "/out" }));
      expect(viaFile.outcome).toEqual({ failed: true, failureReason: "failed to fetch result", result: "" });
      // A symlinked directory on the way, and ".." trying to climb out of the root.
      const viaDir = await execute(h, taskOf(act.sh(`ln -s ${hostDir} /d`), { resultFile: "/d/secret" }));
      expect(viaDir.outcome.failureReason).toBe("failed to fetch result");
      const depth = "../".repeat(20);
      const viaDots = await execute(h, taskOf(act.sh("ln -s /tmp /t"), { resultFile: `/t/${depth}${secret}` }));
      expect(viaDots.outcome.failureReason).toBe("failed to fetch result");
      // A symlink that stays inside the container is followed like the container would.
      const inside = await execute(h, taskOf(act.sh("printf ok > /tmp/real; ln -s ../tmp/real /home/link"), { resultFile: "/home/link" }));
      expect(inside.outcome).toEqual({ failed: false, failureReason: "", result: "ok" });
    } finally {
      await rm(hostDir, { recursive: true, force: true });
    }
  });

  it("does not hang on a FIFO planted as the result file", async () => {
    const { outcome } = await execute(h, taskOf(act.sh("mkfifo /out"), { resultFile: "/out" }));
    expect(outcome.failureReason).toBe("failed to fetch result");
  });
});

/** Processes on the host whose command line contains text (the container's pid namespace is visible). */
async function hostProcessesWith(text: string): Promise<number> {
  let n = 0;
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) n++;
  }
  return n;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
