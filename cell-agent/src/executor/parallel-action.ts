import type { ParallelAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { aggregate, CancelledError, toStepError, type StepError } from "./errors.js";
import type { StepContext } from "./types.js";

/**
 * parallel: all children at once; waits for every one (a failure does not cancel siblings)
 * and fails with all their failures, in the order of the actions, joined by "; ".
 */
export async function runParallelAction(action: ParallelAction, ctx: StepContext): Promise<void> {
  const childCtx = { ...ctx, source: action.logSource || ctx.source };
  const outcomes = await Promise.allSettled(action.actions.map((child) => ctx.runStep(child, childCtx)));
  if (ctx.signal.aborted) throw new CancelledError();
  const errors: StepError[] = [];
  for (const o of outcomes) if (o.status === "rejected") errors.push(toStepError(o.reason));
  const error = aggregate(errors);
  if (error) throw error;
}
