import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CELL_DISAPPEARED_REASON, decide, NOT_CLAIMED_REASON, NOT_STARTED_REASON, type ConvergeLimits, type Decision, type LiveCells } from "../../src/converger/index.js";
import { sameDecision } from "../../src/converger/decide.js";
import { TaskRecordSchema, type TaskRecord } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";

// What one convergence pass does to one task, case by case (2015 reference §5.2, plus this
// project's CLAIMED state and callback retry interval). Pure: no NATS, no clock.

const s = (seconds: number): bigint => BigInt(Math.round(seconds * 1000)) * 1_000_000n;
const limits: ConvergeLimits = {
  kickNanos: s(30),
  pendingTimeoutNanos: s(1800),
  claimTimeoutNanos: s(300),
  completedTtlNanos: s(120),
  retryIntervalNanos: s(10),
};
const NOW = s(100_000);

interface Case {
  state: TaskState;
  /** Seconds before NOW. */
  createdAgo?: number;
  updatedAgo?: number;
  completedAgo?: number;
  callback?: boolean;
  /** The task's cell: live (registered with this session), restarted (new session) or gone. */
  cell?: "live" | "restarted" | "gone";
  /** False while the heartbeat view may be incomplete. */
  trusted?: boolean;
}

function record(c: Case): TaskRecord {
  return create(TaskRecordSchema, {
    task: {
      taskGuid: "g",
      state: c.state,
      cellId: c.cell ? "cell-1" : "",
      createdAt: NOW - s(c.createdAgo ?? 0),
      completionCallbackUrl: c.callback ? "http://127.0.0.1:1/done" : "",
    },
    updatedAt: NOW - s(c.updatedAgo ?? 0),
    firstCompletedAt: c.completedAgo === undefined ? 0n : NOW - s(c.completedAgo),
    cellSessionId: c.cell ? "session-1" : "",
  });
}

function liveCells(c: Case): LiveCells {
  const registered = c.cell === "live" ? "session-1" : c.cell === "restarted" ? "session-2" : undefined;
  return {
    isLive: (cellId, sessionId) => cellId === "cell-1" && sessionId === registered,
    trusted: () => c.trusted ?? true,
    confirmGone: async () => registered === undefined,
  };
}

const { PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING } = TaskState;
const fail = (reason: string): Decision => ({ kind: "fail", reason });

const cases: Array<[string, Case, Decision | undefined]> = [
  // PENDING: failed once too old (from created_at), else kicked when idle for the kick interval.
  ["pending, just created", { state: PENDING }, undefined],
  ["pending, idle just under the kick interval", { state: PENDING, createdAgo: 29, updatedAgo: 29.999 }, undefined],
  ["pending, idle for the kick interval", { state: PENDING, createdAgo: 30, updatedAgo: 30 }, { kind: "kick" }],
  ["pending, just under the pending timeout, recently kicked", { state: PENDING, createdAgo: 1799, updatedAgo: 1 }, undefined],
  ["pending, at the pending timeout, recently kicked", { state: PENDING, createdAgo: 1800, updatedAgo: 1 }, fail(NOT_STARTED_REASON)],
  ["pending, past the pending timeout and idle", { state: PENDING, createdAgo: 5000, updatedAgo: 5000 }, fail(NOT_STARTED_REASON)],
  // CLAIMED: nothing ran yet, so a vanished cell gives it back to the auction.
  ["claimed on a live cell", { state: CLAIMED, cell: "live", updatedAgo: 299 }, undefined],
  ["claimed on a live cell for the claim timeout", { state: CLAIMED, cell: "live", updatedAgo: 300 }, fail(NOT_CLAIMED_REASON)],
  ["claimed on a cell that is gone", { state: CLAIMED, cell: "gone", updatedAgo: 1 }, { kind: "unclaim" }],
  ["claimed on a cell that restarted (new session)", { state: CLAIMED, cell: "restarted" }, { kind: "unclaim" }],
  ["claimed on a gone cell, also past the claim timeout", { state: CLAIMED, cell: "gone", updatedAgo: 900 }, { kind: "unclaim" }],
  ["claimed on a gone cell while the heartbeat view is not trusted", { state: CLAIMED, cell: "gone", trusted: false }, undefined],
  ["claimed, untrusted view, past the claim timeout", { state: CLAIMED, cell: "gone", trusted: false, updatedAgo: 300 }, fail(NOT_CLAIMED_REASON)],
  // RUNNING: never re-run; failed only when its cell is gone, however long it runs.
  ["running on a live cell for hours", { state: RUNNING, cell: "live", createdAgo: 90_000, updatedAgo: 90_000 }, undefined],
  ["running on a cell that is gone", { state: RUNNING, cell: "gone" }, fail(CELL_DISAPPEARED_REASON)],
  ["running on a cell that restarted (new session)", { state: RUNNING, cell: "restarted" }, fail(CELL_DISAPPEARED_REASON)],
  ["running on a gone cell while the view is not trusted", { state: RUNNING, cell: "gone", trusted: false }, undefined],
  // COMPLETED: reaped after the TTL from first completion; a callback is retried when idle.
  ["completed without callback, long idle", { state: COMPLETED, completedAgo: 119, updatedAgo: 119 }, undefined],
  ["completed without callback, at the TTL", { state: COMPLETED, completedAgo: 120, updatedAgo: 120 }, { kind: "remove" }],
  ["completed with callback, idle under the retry interval", { state: COMPLETED, callback: true, completedAgo: 9, updatedAgo: 9 }, undefined],
  ["completed with callback, idle for the retry interval", { state: COMPLETED, callback: true, completedAgo: 10, updatedAgo: 10 }, { kind: "dispatch-kick" }],
  ["completed with callback, at the TTL", { state: COMPLETED, callback: true, completedAgo: 120, updatedAgo: 1 }, { kind: "remove" }],
  // RESOLVING: whoever resolves it died when it stays idle; reaped after the TTL regardless.
  ["resolving, recently", { state: RESOLVING, callback: true, completedAgo: 50, updatedAgo: 29 }, undefined],
  ["resolving, idle for the kick interval", { state: RESOLVING, callback: true, completedAgo: 50, updatedAgo: 30 }, { kind: "demote" }],
  ["resolving without callback (a DELETE that died)", { state: RESOLVING, completedAgo: 50, updatedAgo: 40 }, { kind: "demote" }],
  ["resolving, at the TTL", { state: RESOLVING, callback: true, completedAgo: 120, updatedAgo: 1 }, { kind: "remove" }],
  // A record in no known state is left alone.
  ["state unspecified", { state: TaskState.UNSPECIFIED, updatedAgo: 90_000 }, undefined],
];

describe("decide: what convergence does to one task", () => {
  it.each(cases)("%s", (_name, c, expected) => {
    expect(decide(record(c), NOW, limits, liveCells(c))).toEqual(expected);
  });

  it("removes a record without a task (undecodable)", () => {
    expect(decide(create(TaskRecordSchema, {}), NOW, limits, liveCells({ state: PENDING }))).toEqual({ kind: "remove" });
  });
});

describe("sameDecision: the pass re-decides inside the compare-and-swap", () => {
  it.each<[Decision | undefined, Decision | undefined, boolean]>([
    [{ kind: "kick" }, { kind: "kick" }, true],
    [{ kind: "kick" }, { kind: "remove" }, false],
    [fail("a"), fail("a"), true],
    [fail("a"), fail("b"), false],
    [undefined, { kind: "kick" }, false],
    [{ kind: "kick" }, undefined, false],
    [undefined, undefined, false],
  ])("%o and %o: %s", (a, b, same) => {
    expect(sameDecision(a, b)).toBe(same);
  });
});
