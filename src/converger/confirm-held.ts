import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { TaskState } from "../gen/diego/v1/task_pb.js";
import { subjects } from "../nats/index.js";
import { applyUntilDone, nowNanos, transitions, type TaskIndex, type TaskStore, type Transition } from "../store/index.js";
import { NO_CONTAINER_REASON, type LiveCells } from "./decide.js";
import { DecisionChangedError } from "./errors.js";

// The other half of a cell's reconciliation (the 2015 rep's bulk loop): a task the store has
// CLAIMED or RUNNING on a live cell, untouched for a while, is checked with that cell. A cell that
// answers without it (its runner died, or a write was lost for good) does not hold it, and it
// fails with `task container does not exist`. So no task stays CLAIMED or RUNNING longer than
// `confirmAfter` plus a pass without its cell vouching for it. A cell that does not answer
// proves nothing; its heartbeat decides.

export interface HeldCheckDeps {
  store: TaskStore;
  index: TaskIndex;
  cells: LiveCells;
  nc: NatsConnection;
  logger: Logger;
  confirmAfterNanos: bigint;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Asked {
  guid: string;
  updatedAt: bigint;
  sessionId: string;
}

/** Returns how many tasks were failed. */
export async function confirmHeldTasks(deps: HeldCheckDeps): Promise<number> {
  const { cells, index } = deps;
  if (!cells.trusted()) return 0;
  const now = nowNanos();
  const byCell = new Map<string, Asked[]>();
  for (const entry of index.list()) {
    if (entry.state !== TaskState.CLAIMED && entry.state !== TaskState.RUNNING) continue;
    const r = entry.record;
    if (now - r.updatedAt < deps.confirmAfterNanos) continue;
    const cellId = r.task!.cellId;
    // A cell that is gone (or restarted) is the lost-cell rule's business.
    if (!cells.isLive(cellId, r.cellSessionId)) continue;
    let list = byCell.get(cellId);
    if (!list) byCell.set(cellId, (list = []));
    list.push({ guid: entry.guid, updatedAt: r.updatedAt, sessionId: r.cellSessionId });
  }
  const failed = await Promise.all([...byCell].map(([cellId, asked]) => checkCell(deps, cellId, asked)));
  return failed.reduce((a, b) => a + b, 0);
}

async function checkCell(deps: HeldCheckDeps, cellId: string, asked: Asked[]): Promise<number> {
  let answer: { session_id?: string; held?: string[] };
  try {
    const reply = await deps.nc.request(subjects.cellHeld(cellId), JSON.stringify({ tasks: asked.map((a) => a.guid) }), {
      timeout: deps.timeoutMs ?? 2_000,
    });
    answer = reply.json();
  } catch {
    return 0;
  }
  const held = new Set(answer.held ?? []);
  let failed = 0;
  for (const a of asked) {
    if (held.has(a.guid) || answer.session_id !== a.sessionId) continue;
    // Only if nothing changed since the index showed it: a task that just completed is fine.
    const guarded: Transition = (r, at) => {
      if (r.updatedAt !== a.updatedAt || r.task!.cellId !== cellId || r.cellSessionId !== a.sessionId) throw new DecisionChangedError(a.guid);
      return transitions.fail(NO_CONTAINER_REASON)(r, at);
    };
    try {
      await applyUntilDone(deps.store, a.guid, guarded, { logger: deps.logger, signal: deps.signal, maxMs: 10_000 });
      failed += 1;
      deps.logger.info({ guid: a.guid, cell: cellId }, "task failed: its cell does not hold it");
    } catch (err) {
      deps.logger.debug({ guid: a.guid, reason: (err as Error).message }, "held check lost a race");
    }
  }
  return failed;
}
