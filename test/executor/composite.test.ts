import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { act, execute, startHarness, taskOf, type Harness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe("timeout action", () => {
  it("cancels the inner action and fails with 'exceeded 200ms timeout'", async () => {
    const { outcome, ms } = await execute(h, taskOf(act.timeout(200, act.run("sleep", ["100"]))));
    expect(outcome).toEqual({ failed: true, failureReason: "exceeded 200ms timeout", result: "" });
    expect(ms).toBeLessThan(2000);
  });

  it("passes the inner result through when it finishes in time", async () => {
    const ok = await execute(h, taskOf(act.timeout(10_000, act.sh("echo fast"))));
    expect(ok.outcome.failed).toBe(false);
    const failed = await execute(h, taskOf(act.timeout(10_000, act.sh("exit 2"))));
    expect(failed.outcome.failureReason).toBe("Exited with status 2");
  });
});

describe("try action", () => {
  it("succeeds although the inner action failed", async () => {
    const { outcome, received } = await execute(h, taskOf(act.try(act.sh("exit 1"))));
    expect(outcome).toEqual({ failed: false, failureReason: "", result: "" });
    expect(received.texts()).toEqual(["Exit status 1"]);
  });
});

describe("serial action", () => {
  it("runs in order and stops at the first failure", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.serial([act.sh("echo first"), act.sh("exit 4"), act.sh("echo never")])),
    );
    expect(outcome.failureReason).toBe("Exited with status 4");
    expect(received.texts()).toEqual(["first", "Exit status 0", "Exit status 4"]);
  });
});

describe("parallel action", () => {
  it("waits for every child and fails with all failures on one line", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.parallel([act.sh("exit 1"), act.sh("sleep 0.3; echo slow sibling"), act.sh("exit 2")])),
    );
    expect(outcome.failureReason).toBe("Exited with status 1; Exited with status 2");
    // A failure does not cancel the siblings.
    expect(received.texts()).toContain("slow sibling");
  });

  it("succeeds when every child succeeds, running them at the same time", async () => {
    const { outcome, ms } = await execute(h, taskOf(act.parallel([act.sh("sleep 1"), act.sh("sleep 1"), act.sh("sleep 1")])));
    expect(outcome.failed).toBe(false);
    expect(ms).toBeLessThan(2500);
  });
});

describe("codependent action", () => {
  it("cancels the others when one exits successfully, and fails with 'Codependent step exited'", async () => {
    const { outcome, ms } = await execute(h, taskOf(act.codependent([act.sh("sleep 0.2"), act.run("sleep", ["100"])])));
    expect(outcome).toEqual({ failed: true, failureReason: "Codependent step exited", result: "" });
    expect(ms).toBeLessThan(5000);
  });

  it("fails with the failing child's reason, leaving out the cancelled siblings", async () => {
    const { outcome } = await execute(h, taskOf(act.codependent([act.run("sleep", ["100"]), act.sh("exit 5")])));
    expect(outcome.failureReason).toBe("Exited with status 5");
  });
});

describe("emit_progress action", () => {
  it("writes start and success messages under its own log_source; the child keeps the parent's", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.emitProgress(act.sh("echo working"), { startMessage: "Starting", successMessage: "Done", failureMessagePrefix: "Failed", logSource: "PROG" }), {
        logSource: "APP",
      }),
    );
    expect(outcome.failed).toBe(false);
    expect(received.lines()).toEqual([
      "PROG stdout: Starting",
      "APP stdout: working",
      "APP stdout: Exit status 0",
      "PROG stdout: Done",
    ]);
  });

  it("writes the failure prefix with the emittable error to stderr and keeps the failure", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.emitProgress(act.sh("exit 2"), { startMessage: "Starting", successMessage: "Done", failureMessagePrefix: "Failed" })),
    );
    expect(outcome.failureReason).toBe("Exited with status 2");
    expect(received.lines()).toEqual(["LOG stdout: Starting", "LOG stdout: Exit status 2", "LOG stderr: Failed: Exited with status 2"]);
  });

  it("writes only the prefix for an error that is not emittable (an aggregate)", async () => {
    const { received } = await execute(
      h,
      taskOf(act.emitProgress(act.parallel([act.sh("exit 1"), act.sh("exit 2")]), { failureMessagePrefix: "Failed" })),
    );
    expect(received.lines().at(-1)).toBe("LOG stderr: Failed");
  });

  it("prints nothing for empty messages", async () => {
    const { received } = await execute(h, taskOf(act.emitProgress(act.sh("true"), {})));
    expect(received.texts()).toEqual(["Exit status 0"]);
  });
});

describe("log_source inheritance", () => {
  it("wrappers pass their log_source down; serial's is ignored; a run's own wins", async () => {
    const { received } = await execute(
      h,
      taskOf(
        act.serial(
          [
            act.sh("echo from-serial"),
            act.parallel([act.sh("echo from-parallel"), act.sh("echo own", { logSource: "OWN" })], "PAR"),
            act.try(act.sh("echo from-try"), "TRY"),
            act.timeout(10_000, act.sh("echo from-timeout"), "TO"),
            act.parallel([act.serial([act.sh("echo nested")], "SER2")], "PAR2"),
          ],
          "SER",
        ),
        { logSource: "APP" },
      ),
    );
    const sourceOf = (text: string): string | undefined => received.messages.find((m) => m.message === text)?.sourceName;
    expect(sourceOf("from-serial")).toBe("APP");
    expect(sourceOf("from-parallel")).toBe("PAR");
    expect(sourceOf("own")).toBe("OWN");
    expect(sourceOf("from-try")).toBe("TRY");
    expect(sourceOf("from-timeout")).toBe("TO");
    expect(sourceOf("nested")).toBe("PAR2");
  });

  it("codependent passes its log_source down", async () => {
    const { received } = await execute(h, taskOf(act.codependent([act.sh("echo co")], "CO")));
    expect(received.lines()).toEqual(["CO stdout: co", "CO stdout: Exit status 0"]);
  });
});
