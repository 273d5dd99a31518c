import { TaskState } from "../gen/diego/v1/task_pb.js";

// REST and the seeds spell states without the protobuf enum prefix.
const names: Record<TaskState, string> = {
  [TaskState.UNSPECIFIED]: "INVALID",
  [TaskState.PENDING]: "PENDING",
  [TaskState.CLAIMED]: "CLAIMED",
  [TaskState.RUNNING]: "RUNNING",
  [TaskState.COMPLETED]: "COMPLETED",
  [TaskState.RESOLVING]: "RESOLVING",
};

/** The failure_reason of a cancelled task (Diego's words), wherever it is cancelled. */
export const CANCELLED_REASON = "task was cancelled";

export function stateName(state: TaskState): string {
  return names[state] ?? "INVALID";
}

export { TaskState };
