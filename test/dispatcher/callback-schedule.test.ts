import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { nextStep, wantsCallback, type CallbackPolicy, type CallbackStep } from "../../src/dispatcher/index.js";
import { TaskRecordSchema, type TaskRecord } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";

// When a completed task's callback is due (2015 reference §5.3): at once on completion, again a
// retry interval after a failed round ended, never after the completed-task TTL. Pure.

const s = (seconds: number): bigint => BigInt(Math.round(seconds * 1000)) * 1_000_000n;
const policy: CallbackPolicy = { retryIntervalNanos: s(30), completedTtlNanos: s(120) };
/** First completion. */
const F = s(50_000);

/** A completed task; `demotedAt` (seconds after F) is when its last failed round ended. */
function completed(demotedAt?: number): TaskRecord {
  return create(TaskRecordSchema, {
    task: { taskGuid: "g", state: TaskState.COMPLETED, completionCallbackUrl: "http://127.0.0.1:1/" },
    firstCompletedAt: F,
    updatedAt: demotedAt === undefined ? F : F + s(demotedAt),
  });
}

const cases: Array<[string, TaskRecord, number, CallbackStep]> = [
  ["fresh completion: called at once", completed(), 0, { kind: "call" }],
  ["fresh completion seen late: still called", completed(), 119.999, { kind: "call" }],
  ["fresh completion at the TTL: reaped, not called", completed(), 120, { kind: "reap" }],
  ["fresh completion seen by a dispatcher whose clock is behind: waits for it", completed(), -1, { kind: "wait", until: F }],
  ["demoted: waits a retry interval from the end of the round", completed(10), 20, { kind: "wait", until: F + s(40) }],
  ["demoted: called once the retry interval has passed", completed(10), 40, { kind: "call" }],
  ["demoted near the TTL: waits only until the TTL", completed(100), 110, { kind: "wait", until: F + s(120) }],
  ["demoted, retry due after the TTL: reaped at the TTL", completed(100), 120, { kind: "reap" }],
  ["demoted, long past the TTL: reaped", completed(10), 500, { kind: "reap" }],
];

describe("nextStep: a completed task's callback", () => {
  it.each(cases)("%s", (_name, record, at, expected) => {
    expect(nextStep(record, F + s(at), policy)).toEqual(expected);
  });
});

describe("wantsCallback", () => {
  const withState = (state: TaskState, url: string): TaskRecord => create(TaskRecordSchema, { task: { taskGuid: "g", state, completionCallbackUrl: url } });
  it.each<[string, TaskRecord, boolean]>([
    ["completed with a callback URL", withState(TaskState.COMPLETED, "http://127.0.0.1:1/"), true],
    ["completed without one", withState(TaskState.COMPLETED, ""), false],
    ["resolving (a round in flight)", withState(TaskState.RESOLVING, "http://127.0.0.1:1/"), false],
    ["running", withState(TaskState.RUNNING, "http://127.0.0.1:1/"), false],
    ["a record without a task", create(TaskRecordSchema, {}), false],
  ])("%s: %s", (_name, record, wanted) => {
    expect(wantsCallback(record)).toBe(wanted);
  });
});
