import type { TaskRecord } from "../gen/diego/v1/internal_pb.js";
import { TaskState } from "../gen/diego/v1/task_pb.js";

// What one convergence pass does to one task: a pure function of the record, the clock and the
// live cells. The pass calls it again inside the compare-and-swap, so a task that moved on in
// the meantime is left alone.

export const NOT_STARTED_REASON = "not started within time limit";
export const NOT_CLAIMED_REASON = "not claimed within time limit";
export const CELL_DISAPPEARED_REASON = "cell disappeared before completion";
/** The cell is alive but says it does not hold the task (2015's rep said the same). */
export const NO_CONTAINER_REASON = "task container does not exist";

export interface ConvergeLimits {
  kickNanos: bigint;
  pendingTimeoutNanos: bigint;
  claimTimeoutNanos: bigint;
  completedTtlNanos: bigint;
  retryIntervalNanos: bigint;
}

export interface LiveCells {
  /** True while the cell is registered with this very session (a restarted cell has a new one). */
  isLive(cellId: string, sessionId: string): boolean;
  /**
   * False until this process's view of heartbeats has been connected and current for a cell TTL
   * (after a start, a NATS reconnect or a stalled watch), when heartbeats may simply not have
   * arrived yet.
   */
  trusted(): boolean;
  /** Asks the bucket itself, not the view, before a task is taken from its cell. */
  confirmGone(cellId: string, sessionId: string): Promise<boolean>;
}

export type Decision =
  | { kind: "fail"; reason: string }
  | { kind: "kick" }
  | { kind: "unclaim" }
  | { kind: "remove" }
  | { kind: "demote" }
  | { kind: "dispatch-kick" };

export function decide(r: TaskRecord, now: bigint, l: ConvergeLimits, cells: LiveCells): Decision | undefined {
  const task = r.task;
  if (!task) return { kind: "remove" };
  const idle = now - r.updatedAt;
  const cellGone = (): boolean => cells.trusted() && !cells.isLive(task.cellId, r.cellSessionId);

  switch (task.state) {
    case TaskState.PENDING:
      if (now - task.createdAt >= l.pendingTimeoutNanos) return { kind: "fail", reason: NOT_STARTED_REASON };
      return idle >= l.kickNanos ? { kind: "kick" } : undefined;
    case TaskState.CLAIMED:
      // Nothing ran yet (a cell starts only after its CLAIMED -> RUNNING swap), so the task may
      // safely go back to the auction.
      if (cellGone()) return { kind: "unclaim" };
      return idle >= l.claimTimeoutNanos ? { kind: "fail", reason: NOT_CLAIMED_REASON } : undefined;
    case TaskState.RUNNING:
      // Never re-run: the action may have had effects already.
      return cellGone() ? { kind: "fail", reason: CELL_DISAPPEARED_REASON } : undefined;
    case TaskState.COMPLETED:
      if (now - r.firstCompletedAt >= l.completedTtlNanos) return { kind: "remove" };
      return task.completionCallbackUrl && idle >= l.retryIntervalNanos ? { kind: "dispatch-kick" } : undefined;
    case TaskState.RESOLVING:
      if (now - r.firstCompletedAt >= l.completedTtlNanos) return { kind: "remove" };
      // Whoever was resolving it (a dispatcher, a DELETE) died: hand it back.
      return idle >= l.kickNanos ? { kind: "demote" } : undefined;
    default:
      return undefined;
  }
}

export function sameDecision(a: Decision | undefined, b: Decision | undefined): boolean {
  if (!a || !b || a.kind !== b.kind) return false;
  return a.kind !== "fail" || a.reason === (b as { reason: string }).reason;
}
