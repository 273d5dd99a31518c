import { auctionBatchSize, auctionSeconds, auctionTasks, callbackAttempts, lrpActualInstances, lrpConvergenceActions, lrpDesiredInstances } from "./metrics.js";

// One-line calls for the control loops, so their files only gain a line each.

export function recordAuction(stats: { tasks: number; placed: number; failed: number; durationMs: number }): void {
  auctionBatchSize.observe(stats.tasks);
  auctionSeconds.observe(stats.durationMs / 1000);
  auctionTasks.inc({ result: "placed" }, stats.placed);
  auctionTasks.inc({ result: "failed" }, stats.failed);
  auctionTasks.inc({ result: "waiting" }, Math.max(0, stats.tasks - stats.placed - stats.failed));
}

type CallbackOutcome = { kind: "response"; status: number } | { kind: "timeout" } | { kind: "aborted" } | { kind: "error" };

export function recordCallback(outcome: CallbackOutcome): void {
  const label =
    outcome.kind !== "response" ? outcome.kind : outcome.status === 503 || outcome.status === 504 ? String(outcome.status) : `${Math.floor(outcome.status / 100)}xx`;
  callbackAttempts.inc({ outcome: label });
}

/** One LRP convergence pass: what it read (instances desired, records by state) and what it did. */
export function recordLrpConvergence(stats: { desiredInstances: number; actualByState: Record<string, number>; actions: Record<string, number> }): void {
  lrpDesiredInstances.set(stats.desiredInstances);
  lrpActualInstances.reset();
  for (const [state, n] of Object.entries(stats.actualByState)) lrpActualInstances.set({ state }, n);
  for (const [action, n] of Object.entries(stats.actions)) if (n > 0) lrpConvergenceActions.inc({ action }, n);
}
