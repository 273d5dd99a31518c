import type { TaskRecord } from "../gen/diego/v1/internal_pb.js";
import { TaskState } from "../gen/diego/v1/task_pb.js";

// When is a completed task's callback due? Pure functions of the stored record, so every
// dispatcher reaches the same answer, and the answer is re-checked inside the compare-and-swap.

export interface CallbackPolicy {
  retryIntervalNanos: bigint;
  completedTtlNanos: bigint;
}

export type CallbackStep = { kind: "call" } | { kind: "reap" } | { kind: "wait"; until: bigint };

export function wantsCallback(r: TaskRecord): boolean {
  return r.task?.state === TaskState.COMPLETED && r.task.completionCallbackUrl !== "";
}

/** A fresh completion has never been tried (only a demotion moves updated_at past first_completed_at). */
export function neverTried(r: TaskRecord): boolean {
  return r.updatedAt === r.firstCompletedAt;
}

export function nextStep(r: TaskRecord, now: bigint, p: CallbackPolicy): CallbackStep {
  const expiresAt = r.firstCompletedAt + p.completedTtlNanos;
  if (now >= expiresAt) return { kind: "reap" };
  // updated_at of a demoted task is the end of its last round: the retry waits from there.
  const dueAt = neverTried(r) ? r.updatedAt : r.updatedAt + p.retryIntervalNanos;
  if (now >= dueAt) return { kind: "call" };
  return { kind: "wait", until: dueAt < expiresAt ? dueAt : expiresAt };
}
