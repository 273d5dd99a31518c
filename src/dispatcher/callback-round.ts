import { clone } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { TaskRecord } from "../gen/diego/v1/internal_pb.js";
import { TaskResponseSchema, TaskState } from "../gen/diego/v1/task_pb.js";
import { taskResponseToJson } from "../model/index.js";
import { retryUntilDone } from "../nats/index.js";
import { applyUntilDone, InvalidStateTransitionError, TaskNotFoundError, isCasConflict, transitions, type TaskStore, type Transition } from "../store/index.js";
import { nextStep, wantsCallback, type CallbackPolicy } from "./callback-schedule.js";
import { CallbackNotDueError, CallbackTakenOverError } from "./errors.js";
import type { CallbackOutcome } from "./post-callback.js";
import { recordCallback } from "../metrics/index.js";

// One round of a task's callback: take it (COMPLETED -> RESOLVING; only one dispatcher wins,
// which is what keeps the first call at most once), POST up to `attempts` times while the
// answer is 503/504, then either remove the task (any other answer) or hand it back
// (RESOLVING -> COMPLETED) to be tried again after the retry interval.

export type RoundResult = "skipped" | "resolved" | "retry-later";

export interface RoundDeps {
  store: TaskStore;
  policy: CallbackPolicy;
  attempts: number;
  post(url: string, body: string): Promise<CallbackOutcome>;
  logger: Logger;
  /** Aborted when the dispatcher stops: writes still being retried give up then. */
  signal?: AbortSignal;
}

const isBusyStatus = (status: number): boolean => status === 503 || status === 504;

export const isLostRace = (err: unknown): boolean =>
  err instanceof CallbackNotDueError ||
  err instanceof CallbackTakenOverError ||
  err instanceof InvalidStateTransitionError ||
  err instanceof TaskNotFoundError;

/** COMPLETED -> RESOLVING, but only while the fresh record still says the callback is due. */
const takeIfDue =
  (guid: string, policy: CallbackPolicy): Transition =>
  (r, now) => {
    if (!wantsCallback(r) || nextStep(r, now, policy).kind !== "call") throw new CallbackNotDueError(guid);
    return transitions.startResolving(r, now);
  };

/** RESOLVING -> COMPLETED, only if nobody touched the record since we took it. */
const giveBack =
  (guid: string, takenAt: bigint): Transition =>
  (r, now) => {
    if (r.task?.state !== TaskState.RESOLVING || r.updatedAt !== takenAt) throw new CallbackTakenOverError(guid);
    return transitions.demoteResolving(r, now);
  };

/** The body: the task's TaskResponse JSON as it was when it completed. */
export function callbackBody(r: TaskRecord): string {
  const task = clone(TaskResponseSchema, r.task!);
  task.state = TaskState.COMPLETED;
  return taskResponseToJson(task);
}

export async function runCallbackRound(deps: RoundDeps, guid: string): Promise<RoundResult> {
  const { store, logger } = deps;
  let taken;
  try {
    // Every write of a round is retried through NATS faults until done or refused.
    taken = await applyUntilDone(store, guid, takeIfDue(guid, deps.policy), { logger, signal: deps.signal, what: `take callback of ${guid}` });
  } catch (err) {
    if (isLostRace(err)) {
      logger.debug({ guid, reason: (err as Error).message }, "callback not taken");
      return "skipped";
    }
    throw err;
  }

  const url = taken.record.task!.completionCallbackUrl;
  const body = callbackBody(taken.record);
  let outcome: CallbackOutcome = { kind: "aborted" };
  for (let attempt = 1; attempt <= deps.attempts; attempt++) {
    outcome = await deps.post(url, body);
    logger.debug({ guid, attempt, outcome }, "callback attempt");
    recordCallback(outcome);
    if (outcome.kind !== "response" || !isBusyStatus(outcome.status)) break;
  }

  if (outcome.kind === "response" && !isBusyStatus(outcome.status)) {
    await retryUntilDone(() => removeDelivered(store, taken.record, guid, taken.revision), {
      logger,
      signal: deps.signal,
      what: `remove resolved task ${guid}`,
    });
    logger.info({ guid, status: outcome.status }, "callback delivered, task resolved");
    return "resolved";
  }
  try {
    await applyUntilDone(store, guid, giveBack(guid, taken.record.updatedAt), { logger, signal: deps.signal, what: `hand back callback of ${guid}` });
  } catch (err) {
    if (!isLostRace(err)) throw err;
    logger.debug({ guid }, "callback round failed, task already taken over");
  }
  logger.info({ guid, outcome }, "callback failed, will retry");
  return "retry-later";
}

/** Any answer resolves the task, even if someone demoted it while we waited for the answer. */
async function removeDelivered(store: TaskStore, taken: TaskRecord, guid: string, revision: number): Promise<void> {
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      await store.remove(guid, revision);
      return;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
    const fresh = await store.get(guid);
    const state = fresh?.record.task?.state;
    if (!fresh || (state !== TaskState.COMPLETED && state !== TaskState.RESOLVING)) return;
    // Same guid but a new task (deleted and created again): not ours to remove.
    if (fresh.record.task!.createdAt !== taken.task!.createdAt) return;
    revision = fresh.revision;
  }
}
