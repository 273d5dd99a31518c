import type { TryAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { CancelledError, toStepError } from "./errors.js";
import { missingChild } from "./missing-child.js";
import type { StepContext } from "./types.js";

/**
 * try: runs the inner action and succeeds whatever it did. Only a cancel of the try itself
 * propagates, so a cancelled task or codependent group never mistakes it for a success.
 */
export async function runTryAction(action: TryAction, ctx: StepContext): Promise<void> {
  if (!action.action) throw missingChild("try");
  try {
    await ctx.runStep(action.action, { ...ctx, source: action.logSource || ctx.source });
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledError();
    ctx.logger.info({ err: toStepError(err).message }, "try action ignored a failure");
  }
}
