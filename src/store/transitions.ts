import { clone } from "@bufbuild/protobuf";
import { TaskRecordSchema, type TaskRecord } from "../gen/diego/v1/internal_pb.js";
import { TaskState, type TaskCreateRequest, type TaskResponse } from "../gen/diego/v1/task_pb.js";
import { CANCELLED_REASON, capFailureReason, stateName } from "../model/index.js";

// Every change of a task is one named, pure transition: (record, args, now) -> new record.
// The store applies each with a compare-and-swap on the record's revision, so two racing
// writers can never both win. No I/O here.

export class InvalidStateTransitionError extends Error {
  override readonly name = "InvalidStateTransitionError";
  constructor(
    readonly from: TaskState,
    readonly to: string,
    detail?: string,
  ) {
    super(detail ?? `Cannot transition from ${stateName(from)} to ${to}`);
  }
}

/**
 * Returning `record` itself means "already so": the store writes nothing. That keeps a write
 * retried after a lost reply (it did go through) from failing on its own result.
 */
export type Transition = (record: TaskRecord, now: bigint) => TaskRecord;

function next(record: TaskRecord, now: bigint, change: (r: TaskRecord) => void): TaskRecord {
  const copy = clone(TaskRecordSchema, record);
  copy.updatedAt = now;
  change(copy);
  return copy;
}

function expect(record: TaskRecord, to: string, ...allowed: TaskState[]): void {
  const from = record.task!.state;
  if (!allowed.includes(from)) throw new InvalidStateTransitionError(from, to);
}

export function newTaskRecord(req: TaskCreateRequest, now: bigint): TaskRecord {
  // Spelled out rather than create(): create() copies every nested message through reflection,
  // a tenth of a create's CPU. Listing each field also makes a new proto field a type error here.
  const task: TaskResponse = {
    $typeName: "diego.v1.TaskResponse",
    taskGuid: req.taskGuid,
    domain: req.domain,
    stack: req.stack,
    rootFs: req.rootFs,
    env: req.env,
    cpuWeight: req.cpuWeight,
    diskMb: req.diskMb,
    memoryMb: req.memoryMb,
    privileged: req.privileged,
    action: req.action,
    resultFile: req.resultFile,
    completionCallbackUrl: req.completionCallbackUrl,
    logGuid: req.logGuid,
    logSource: req.logSource,
    annotation: req.annotation,
    securityGroupRules: req.securityGroupRules,
    state: TaskState.PENDING,
    cellId: "",
    failed: false,
    failureReason: "",
    result: "",
    createdAt: now,
  };
  return { $typeName: "diego.v1.TaskRecord", task, updatedAt: now, firstCompletedAt: 0n, cellSessionId: "", placementAttempts: 0 };
}

/** A cell won the auction: PENDING -> CLAIMED. */
export const claim =
  (cellId: string, sessionId: string): Transition =>
  (r, now) => {
    if (r.task!.state === TaskState.CLAIMED && r.task!.cellId === cellId && r.cellSessionId === sessionId) return r;
    expect(r, "CLAIMED", TaskState.PENDING);
    return next(r, now, (c) => {
      c.task!.state = TaskState.CLAIMED;
      c.task!.cellId = cellId;
      c.cellSessionId = sessionId;
    });
  };

/**
 * The claiming cell starts the container: CLAIMED -> RUNNING, only on that cell. With the cell's
 * session, a task already RUNNING under that session is "already so" (a retried start).
 */
export const start =
  (cellId: string, sessionId?: string): Transition =>
  (r, now) => {
    const t = r.task!;
    if (sessionId && t.state === TaskState.RUNNING && t.cellId === cellId && r.cellSessionId === sessionId) return r;
    expect(r, "RUNNING", TaskState.CLAIMED);
    onCell(r, cellId, "RUNNING");
    return next(r, now, (c) => {
      c.task!.state = TaskState.RUNNING;
    });
  };

export interface Outcome {
  failed: boolean;
  failureReason: string;
  result: string;
}

/** The cell reports the result: CLAIMED/RUNNING on that cell -> COMPLETED. */
export const complete =
  (cellId: string, outcome: Outcome): Transition =>
  (r, now) => {
    expect(r, "COMPLETED", TaskState.CLAIMED, TaskState.RUNNING);
    onCell(r, cellId, "COMPLETED");
    return markCompleted(r, now, outcome);
  };

/** Auctioneer or converger gives up on a task: PENDING/CLAIMED/RUNNING -> COMPLETED failed. */
export const fail =
  (reason: string): Transition =>
  (r, now) => {
    expect(r, "COMPLETED", TaskState.PENDING, TaskState.CLAIMED, TaskState.RUNNING);
    return markCompleted(r, now, { failed: true, failureReason: reason, result: "" });
  };

export const cancel: Transition = (r, now) => {
  expect(r, "COMPLETED", TaskState.PENDING, TaskState.CLAIMED, TaskState.RUNNING);
  return markCompleted(r, now, { failed: true, failureReason: CANCELLED_REASON, result: "" });
};

/** A claim whose cell vanished before anything ran goes back to the auction: CLAIMED -> PENDING. */
export const unclaim: Transition = (r, now) => {
  expect(r, "PENDING", TaskState.CLAIMED);
  return next(r, now, (c) => {
    c.task!.state = TaskState.PENDING;
    c.task!.cellId = "";
    c.cellSessionId = "";
  });
};

/** An auction found no place: count it, and fail the task once attempts run out. */
export const placementFailed =
  (reason: string, maxAttempts: number): Transition =>
  (r, now) => {
    expect(r, "PENDING", TaskState.PENDING);
    if (r.placementAttempts + 1 >= maxAttempts) {
      return markCompleted(r, now, { failed: true, failureReason: reason, result: "" });
    }
    return next(r, now, (c) => {
      c.placementAttempts += 1;
    });
  };

/** Bumps updated_at of a PENDING task so watchers (the auctioneer) look at it again. */
export const kick: Transition = (r, now) => {
  expect(r, "PENDING", TaskState.PENDING);
  return next(r, now, () => undefined);
};

/** A dispatcher or DELETE takes the task: COMPLETED -> RESOLVING (at most one wins). */
export const startResolving: Transition = (r, now) => {
  expect(r, "RESOLVING", TaskState.COMPLETED);
  return next(r, now, (c) => {
    c.task!.state = TaskState.RESOLVING;
  });
};

/** A callback round failed: RESOLVING -> COMPLETED, to be retried later. */
export const demoteResolving: Transition = (r, now) => {
  expect(r, "COMPLETED", TaskState.RESOLVING);
  return next(r, now, (c) => {
    c.task!.state = TaskState.COMPLETED;
  });
};

function onCell(r: TaskRecord, cellId: string, to: string): void {
  if (r.task!.cellId !== cellId) {
    throw new InvalidStateTransitionError(
      r.task!.state,
      to,
      `Running on cell ${r.task!.cellId || "(none)"} not ${cellId}`,
    );
  }
}

function markCompleted(r: TaskRecord, now: bigint, outcome: Outcome): TaskRecord {
  return next(r, now, (c) => {
    const t = c.task!;
    t.state = TaskState.COMPLETED;
    t.failed = outcome.failed;
    t.failureReason = capFailureReason(outcome.failureReason);
    t.result = outcome.failed ? "" : outcome.result;
    // As in Diego: a completed task is no longer on any cell.
    t.cellId = "";
    c.firstCompletedAt = now;
  });
}
