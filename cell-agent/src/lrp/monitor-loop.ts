import type { Action } from "../../../src/gen/diego/v1/actions_pb.js";
import { CancelledError, toStepError, type StepContext } from "../executor/index.js";
import { formatGoDuration } from "../../../src/duration/index.js";
import { abortableWait } from "./abortable-wait.js";

export interface MonitorOptions {
  unhealthyIntervalMs: number;
  healthyIntervalMs: number;
  /** 0 = no start deadline. */
  startTimeoutSec: number;
  /** The first check that passes. */
  onHealthy(): void;
  /** Writes the LRP's "Timed out after ..." line (stderr, the LRP's source). */
  logTimeout(text: string): void;
}

/**
 * The 2015 monitor step: a fresh run of the monitor action after each interval (the next wait
 * starts when a check returns). Checks fail quietly until the first pass, unless the check was
 * scheduled after the start deadline; once healthy, one failure ends the loop. Never resolves:
 * it rejects with the failing check's error, or CancelledError when ctx.signal aborts.
 */
export async function runMonitorLoop(monitor: Action, ctx: StepContext, opts: MonitorOptions): Promise<never> {
  const startTimeoutMs = opts.startTimeoutSec * 1000;
  const deadline = startTimeoutMs > 0 ? Date.now() + startTimeoutMs : undefined;
  let healthy = false;
  for (;;) {
    const interval = healthy ? opts.healthyIntervalMs : opts.unhealthyIntervalMs;
    const scheduled = Date.now() + interval;
    if (!(await abortableWait(interval, ctx.signal))) throw new CancelledError();
    try {
      await ctx.runStep(monitor, ctx);
    } catch (err) {
      if (ctx.signal.aborted) throw new CancelledError();
      const error = toStepError(err);
      if (healthy) throw error;
      if (deadline !== undefined && scheduled > deadline) {
        opts.logTimeout(`Timed out after ${formatGoDuration(BigInt(opts.startTimeoutSec) * 1_000_000_000n)}: health check never passed.\n`);
        throw error;
      }
      continue;
    }
    if (ctx.signal.aborted) throw new CancelledError();
    if (!healthy) {
      healthy = true;
      opts.onHealthy();
    }
  }
}
