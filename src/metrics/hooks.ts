import { auctionBatchSize, auctionSeconds, auctionTasks, callbackAttempts } from "./metrics.js";

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
