import type { Action } from "../../../src/gen/diego/v1/actions_pb.js";
import { aggregate, CancelledError, childAbort, toStepError, type StepContext, type StepError } from "../executor/index.js";
import { runMonitorLoop, type MonitorOptions } from "./monitor-loop.js";

export interface InstanceSteps {
  setup?: Action;
  action: Action;
  monitor?: Action;
}

export interface InstanceStepsOptions extends Omit<MonitorOptions, "onHealthy"> {
  /** Aborting it ends the monitor but not the action: a graceful stop in progress. */
  monitorStop: AbortSignal;
  /** RUNNING: the monitor passed, or (no monitor) the action started. */
  onRunning(): void;
}

/**
 * The 2015 composition (reference 7.1): setup, then the action alone, or the action and the
 * monitor together as a codependent without error-on-exit (a child ending well leaves its
 * sibling running; one failing cancels the other). Resolves with the crash reason when the
 * steps end: "" for a clean end, else the failures, cancellations left out.
 */
export async function runInstanceSteps(steps: InstanceSteps, ctx: StepContext, opts: InstanceStepsOptions): Promise<string> {
  try {
    if (steps.setup) await ctx.runStep(steps.setup, ctx);
  } catch (err) {
    return toStepError(err).message;
  }
  if (ctx.signal.aborted) return new CancelledError().message;
  if (!steps.monitor) {
    // One process: RUNNING once it exists; any other action as it begins.
    const oneProcess = steps.action.action.case === "run";
    if (!oneProcess) opts.onRunning();
    try {
      await ctx.runStep(steps.action, oneProcess ? { ...ctx, processStarted: opts.onRunning } : ctx);
      return "";
    } catch (err) {
      return toStepError(err).message;
    }
  }
  return runWithMonitor(steps.action, steps.monitor, ctx, opts);
}

async function runWithMonitor(action: Action, monitor: Action, ctx: StepContext, opts: InstanceStepsOptions): Promise<string> {
  const group = childAbort(ctx.signal);
  const errors: Array<StepError | undefined> = [];
  const child = async (i: number, run: () => Promise<unknown>): Promise<void> => {
    try {
      await run();
    } catch (err) {
      const error = toStepError(err);
      if (error instanceof CancelledError) return;
      errors[i] = error;
      group.abort();
    }
  };
  try {
    await Promise.all([
      child(0, () => ctx.runStep(action, { ...ctx, signal: group.signal })),
      child(1, () =>
        runMonitorLoop(monitor, { ...ctx, signal: AbortSignal.any([group.signal, opts.monitorStop]) }, { ...opts, onHealthy: opts.onRunning }),
      ),
    ]);
  } finally {
    group.dispose();
  }
  return aggregate(errors.filter((e): e is StepError => e !== undefined))?.message ?? "";
}
