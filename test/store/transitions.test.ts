import { clone, create, equals } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TaskRecordSchema, type TaskRecord } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskCreateRequestSchema, TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { stateName } from "../../src/model/index.js";
import { InvalidStateTransitionError, transitions as T, type Transition } from "../../src/store/index.js";

// Every transition from every state (2015 reference §4.1, with this project's CLAIMED state):
// where it is allowed, what it writes; everywhere else, InvalidStateTransitionError naming both
// states. Pure functions of (record, now).

const NOW = 5_000_000_000n;
const BEFORE = 1_000_000_000n;
const { PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING } = TaskState;
const STATES = [PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING];

/** A task in `state` as the lifecycle leaves it: on cell-1 (session s-1) while claimed or running. */
function inState(state: TaskState, extra: Partial<{ placementAttempts: number; result: string }> = {}): TaskRecord {
  const onCell = state === CLAIMED || state === RUNNING;
  const done = state === COMPLETED || state === RESOLVING;
  return create(TaskRecordSchema, {
    task: { taskGuid: "g", domain: "d", state, cellId: onCell ? "cell-1" : "", createdAt: BEFORE, result: extra.result ?? "" },
    updatedAt: BEFORE,
    firstCompletedAt: done ? BEFORE : 0n,
    cellSessionId: onCell ? "s-1" : "",
    placementAttempts: extra.placementAttempts ?? 0,
  });
}

interface Row {
  name: string;
  transition: Transition;
  /** The state it moves to (named in its refusal). */
  to: string;
  /** From-states it accepts, and the state each ends in. */
  allowed: Partial<Record<TaskState, TaskState>>;
}

const ok = { failed: false, failureReason: "", result: "out" };
const rows: Row[] = [
  { name: "claim", transition: T.claim("cell-2", "s-2"), to: "CLAIMED", allowed: { [PENDING]: CLAIMED } },
  { name: "start", transition: T.start("cell-1"), to: "RUNNING", allowed: { [CLAIMED]: RUNNING } },
  { name: "complete", transition: T.complete("cell-1", ok), to: "COMPLETED", allowed: { [CLAIMED]: COMPLETED, [RUNNING]: COMPLETED } },
  { name: "fail", transition: T.fail("boom"), to: "COMPLETED", allowed: { [PENDING]: COMPLETED, [CLAIMED]: COMPLETED, [RUNNING]: COMPLETED } },
  { name: "cancel", transition: T.cancel, to: "COMPLETED", allowed: { [PENDING]: COMPLETED, [CLAIMED]: COMPLETED, [RUNNING]: COMPLETED } },
  { name: "unclaim", transition: T.unclaim, to: "PENDING", allowed: { [CLAIMED]: PENDING } },
  { name: "placementFailed", transition: T.placementFailed("found no compatible cell", 3), to: "PENDING", allowed: { [PENDING]: PENDING } },
  { name: "kick", transition: T.kick, to: "PENDING", allowed: { [PENDING]: PENDING } },
  { name: "startResolving", transition: T.startResolving, to: "RESOLVING", allowed: { [COMPLETED]: RESOLVING } },
  { name: "demoteResolving", transition: T.demoteResolving, to: "COMPLETED", allowed: { [RESOLVING]: COMPLETED } },
];

const matrix = rows.flatMap((row) => STATES.map((from) => [row.name, stateName(from), row, from] as const));

describe("every transition from every state", () => {
  it.each(matrix)("%s from %s", (_name, _from, row, from) => {
    const before = inState(from);
    const untouched = clone(TaskRecordSchema, before);
    const end = row.allowed[from];
    if (end === undefined) {
      const err = catchTransition(row.transition, before);
      expect(err).toBeInstanceOf(InvalidStateTransitionError);
      expect(err.message).toBe(`Cannot transition from ${stateName(from)} to ${row.to}`);
      expect(err.from).toBe(from);
      expect(err.to).toBe(row.to);
    } else {
      const after = row.transition(before, NOW);
      expect(stateName(after.task!.state)).toBe(stateName(end));
      expect(after.updatedAt).toBe(NOW);
    }
    // The store swaps from the record it read: a transition never changes its input.
    expect(equals(TaskRecordSchema, before, untouched)).toBe(true);
  });
});

function catchTransition(t: Transition, r: TaskRecord): InvalidStateTransitionError {
  try {
    t(r, NOW);
  } catch (err) {
    return err as InvalidStateTransitionError;
  }
  throw new Error("the transition was allowed");
}

describe("what each transition writes", () => {
  it.each<[string, () => TaskRecord, Partial<{ state: TaskState; cellId: string; session: string; failed: boolean; reason: string; result: string; completedAt: bigint; attempts: number }>]>([
    ["claim sets the cell and its session", () => T.claim("cell-2", "s-2")(inState(PENDING), NOW), { state: CLAIMED, cellId: "cell-2", session: "s-2" }],
    ["start keeps the cell", () => T.start("cell-1")(inState(CLAIMED), NOW), { state: RUNNING, cellId: "cell-1", session: "s-1" }],
    [
      "complete (succeeded) keeps the result, clears the cell, stamps first completion",
      () => T.complete("cell-1", ok)(inState(RUNNING), NOW),
      { state: COMPLETED, cellId: "", failed: false, reason: "", result: "out", completedAt: NOW },
    ],
    [
      "complete (failed) drops any result",
      () => T.complete("cell-1", { failed: true, failureReason: "Exited with status 1", result: "partial" })(inState(RUNNING), NOW),
      { state: COMPLETED, cellId: "", failed: true, reason: "Exited with status 1", result: "", completedAt: NOW },
    ],
    ["fail", () => T.fail("cell disappeared before completion")(inState(RUNNING), NOW), { state: COMPLETED, cellId: "", failed: true, reason: "cell disappeared before completion", result: "", completedAt: NOW }],
    ["cancel", () => T.cancel(inState(CLAIMED), NOW), { state: COMPLETED, cellId: "", failed: true, reason: "task was cancelled", result: "", completedAt: NOW }],
    ["unclaim clears the cell and session", () => T.unclaim(inState(CLAIMED), NOW), { state: PENDING, cellId: "", session: "" }],
    ["placementFailed counts a first failed auction", () => T.placementFailed("insufficient resources", 3)(inState(PENDING), NOW), { state: PENDING, attempts: 1 }],
    ["placementFailed counts a second", () => T.placementFailed("insufficient resources", 3)(inState(PENDING, { placementAttempts: 1 }), NOW), { state: PENDING, attempts: 2 }],
    [
      "placementFailed fails the task at the last attempt",
      () => T.placementFailed("insufficient resources", 3)(inState(PENDING, { placementAttempts: 2 }), NOW),
      { state: COMPLETED, failed: true, reason: "insufficient resources", completedAt: NOW, attempts: 2 },
    ],
    ["placementFailed with one attempt allowed fails at once", () => T.placementFailed("found no compatible cell", 1)(inState(PENDING), NOW), { state: COMPLETED, failed: true, reason: "found no compatible cell" }],
    ["kick only bumps updated_at", () => T.kick(inState(PENDING), NOW), { state: PENDING, attempts: 0, completedAt: 0n }],
    ["startResolving keeps the first completion", () => T.startResolving(inState(COMPLETED), NOW), { state: RESOLVING, completedAt: BEFORE }],
    ["demoteResolving keeps the first completion", () => T.demoteResolving(inState(RESOLVING), NOW), { state: COMPLETED, completedAt: BEFORE }],
  ])("%s", (_name, run, want) => {
    const r = run();
    const seen = {
      state: r.task!.state,
      cellId: r.task!.cellId,
      session: r.cellSessionId,
      failed: r.task!.failed,
      reason: r.task!.failureReason,
      result: r.task!.result,
      completedAt: r.firstCompletedAt,
      attempts: r.placementAttempts,
    };
    expect(seen).toMatchObject(want);
    expect(r.updatedAt).toBe(NOW);
  });

  it("caps a long failure reason at 4 KiB, on a character boundary, with an ellipsis", () => {
    const r = T.fail("é".repeat(5000))(inState(RUNNING), NOW);
    expect(Buffer.byteLength(r.task!.failureReason)).toBeLessThanOrEqual(4096);
    expect(r.task!.failureReason).toMatch(/^é+…$/);
  });
});

describe("retried writes and the wrong cell", () => {
  it.each<[string, Transition, TaskRecord, "same" | string]>([
    ["claim already made by the same cell and session is already so", T.claim("cell-1", "s-1"), inState(CLAIMED), "same"],
    ["claim by the same cell under another session", T.claim("cell-1", "s-9"), inState(CLAIMED), "Cannot transition from CLAIMED to CLAIMED"],
    ["claim of a task another cell claimed", T.claim("cell-2", "s-2"), inState(CLAIMED), "Cannot transition from CLAIMED to CLAIMED"],
    ["start retried by the same cell and session is already so", T.start("cell-1", "s-1"), inState(RUNNING), "same"],
    ["start retried without the session", T.start("cell-1"), inState(RUNNING), "Cannot transition from RUNNING to RUNNING"],
    ["start retried under another session", T.start("cell-1", "s-9"), inState(RUNNING), "Cannot transition from RUNNING to RUNNING"],
    ["start by another cell", T.start("cell-2", "s-2"), inState(CLAIMED), "Running on cell cell-1 not cell-2"],
    ["complete by another cell", T.complete("cell-2", ok), inState(RUNNING), "Running on cell cell-1 not cell-2"],
    ["complete retried after it went through", T.complete("cell-1", ok), inState(COMPLETED), "Cannot transition from COMPLETED to COMPLETED"],
  ])("%s", (_name, t, r, want) => {
    if (want === "same") {
      expect(t(r, NOW)).toBe(r);
      return;
    }
    const err = catchTransition(t, r);
    expect(err).toBeInstanceOf(InvalidStateTransitionError);
    expect(err.message).toBe(want);
  });

  it("a refusal by another cell names the state it was asked for", () => {
    expect(catchTransition(T.start("cell-2", "s-2"), inState(CLAIMED)).to).toBe("RUNNING");
    expect(catchTransition(T.complete("cell-2", ok), inState(RUNNING)).to).toBe("COMPLETED");
  });
});

describe("newTaskRecord", () => {
  it("is PENDING on no cell, created and updated now, never completed", () => {
    const req = create(TaskCreateRequestSchema, { taskGuid: "g", domain: "d", stack: "lucid64", memoryMb: 64, completionCallbackUrl: "http://127.0.0.1:1/" });
    const r = T.newTaskRecord(req, NOW);
    expect(r.task).toMatchObject({ taskGuid: "g", domain: "d", stack: "lucid64", memoryMb: 64, completionCallbackUrl: "http://127.0.0.1:1/", state: PENDING, cellId: "", failed: false, createdAt: NOW });
    expect([r.updatedAt, r.firstCompletedAt, r.cellSessionId, r.placementAttempts]).toEqual([NOW, 0n, "", 0]);
  });
});
