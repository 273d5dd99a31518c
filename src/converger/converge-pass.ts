import type { NatsConnection } from "@nats-io/transport-node";
import PQueue from "p-queue";
import type { Logger } from "pino";
import { subjects, retryUntilDone } from "../nats/index.js";
import { applyUntilDone, InvalidStateTransitionError, TaskNotFoundError, isCasConflict, nowNanos, transitions, type TaskIndex, type TaskStore, type Transition } from "../store/index.js";
import { CELL_DISAPPEARED_REASON, decide, sameDecision, type ConvergeLimits, type Decision, type LiveCells } from "./decide.js";
import { DecisionChangedError } from "./errors.js";

// One convergence pass over every task. Each change is a single compare-and-swap whose
// transition first re-decides on the fresh record; losing a race is normal and only logged.

export interface PassDeps {
  store: TaskStore;
  index: TaskIndex;
  cells: LiveCells;
  nc: NatsConnection;
  limits: ConvergeLimits;
  logger: Logger;
  /** Changes in flight at once. */
  parallelism?: number;
  /** How long a change is retried through NATS faults before the next pass decides again. */
  retryMs?: number;
  signal?: AbortSignal;
}

export type PassReport = Record<Decision["kind"] | "lost", number>;

const emptyReport = (): PassReport => ({ fail: 0, kick: 0, unclaim: 0, remove: 0, demote: 0, "dispatch-kick": 0, lost: 0 });

function transitionFor(d: Decision): Transition | undefined {
  switch (d.kind) {
    case "fail":
      return transitions.fail(d.reason);
    case "kick":
      return transitions.kick;
    case "unclaim":
      return transitions.unclaim;
    case "demote":
      return transitions.demoteResolving;
    default:
      return undefined;
  }
}

/** The decision takes a task from its cell because the cell looks gone. */
const takesFromCell = (d: Decision): boolean => d.kind === "unclaim" || (d.kind === "fail" && d.reason === CELL_DISAPPEARED_REASON);

const isLostRace = (err: unknown): boolean =>
  err instanceof DecisionChangedError ||
  err instanceof InvalidStateTransitionError ||
  err instanceof TaskNotFoundError ||
  isCasConflict(err);

export async function convergePass(deps: PassDeps): Promise<PassReport> {
  const { store, index, cells, nc, limits, logger } = deps;
  const report = emptyReport();
  const now = nowNanos();
  const work: Array<{ guid: string; revision: number; decision: Decision }> = [];
  for (const entry of index.list()) {
    const decision = decide(entry.record, now, limits, cells);
    if (decision) work.push({ guid: entry.guid, revision: entry.revision, decision });
  }

  const retry = { logger, signal: deps.signal, maxMs: deps.retryMs ?? 10_000 };
  // Asked once per pass and cell: does the cell itself still answer, with the same session?
  const answers = new Map<string, Promise<string | undefined>>();
  const answeringSession = (cellId: string): Promise<string | undefined> => {
    let p = answers.get(cellId);
    if (!p) answers.set(cellId, (p = askSession(nc, cellId)));
    return p;
  };
  const act = async ({ guid, revision, decision }: (typeof work)[number]): Promise<void> => {
    try {
      if (takesFromCell(decision)) {
        // The view said the cell is gone; the bucket itself must agree (a stale view, say a
        // watch on a lost cluster node, must never cost a live cell its tasks).
        const r = index.get(guid)?.record;
        if (!r || !(await cells.confirmGone(r.task!.cellId, r.cellSessionId))) {
          report.lost += 1;
          logger.info({ guid, cell: r?.task?.cellId }, "cell looked gone but its presence is live; task left alone");
          return;
        }
        // Heartbeats can fail to land while the cell is fine (its NATS node died, the cells
        // stream was electing a leader): a cell that answers with the same session is alive,
        // and the held check settles its tasks.
        if ((await answeringSession(r.task!.cellId)) === r.cellSessionId) {
          report.lost += 1;
          logger.info({ guid, cell: r.task!.cellId }, "cell missed heartbeats but answers; task left alone");
          return;
        }
      }
      if (decision.kind === "dispatch-kick") {
        nc.publish(subjects.dispatchKick, guid);
      } else if (decision.kind === "remove") {
        await retryUntilDone(() => store.remove(guid, revision), { ...retry, what: `remove task ${guid}` });
      } else {
        const change = transitionFor(decision)!;
        const guarded: Transition = (r, at) => {
          if (!sameDecision(decide(r, at, limits, cells), decision)) throw new DecisionChangedError(guid);
          return change(r, at);
        };
        await applyUntilDone(store, guid, guarded, retry);
        // The auctioneer watches the bucket too; the kick only saves it a wait.
        if (decision.kind === "kick" || decision.kind === "unclaim") nc.publish(subjects.auctionKick, guid);
      }
      report[decision.kind] += 1;
      logger.debug({ guid, decision }, "converged task");
      if (decision.kind === "fail") logger.info({ guid, reason: decision.reason }, "task failed by convergence");
    } catch (err) {
      if (!isLostRace(err)) throw err;
      report.lost += 1;
      logger.debug({ guid, decision, reason: (err as Error).message }, "convergence lost a race");
    }
  };

  const lanes = new PQueue({ concurrency: deps.parallelism ?? 16 });
  await lanes.addAll(work.map((item) => () => act(item)));
  return report;
}

/** The session a cell answers with right now, or undefined if it does not answer. */
async function askSession(nc: NatsConnection, cellId: string): Promise<string | undefined> {
  try {
    const reply = await nc.request(subjects.cellHeld(cellId), JSON.stringify({ tasks: [] }), { timeout: 1_500 });
    const body = reply.json<{ session_id?: unknown }>();
    return typeof body.session_id === "string" ? body.session_id : undefined;
  } catch {
    return undefined;
  }
}
