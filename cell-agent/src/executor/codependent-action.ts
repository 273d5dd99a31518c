import type { CodependentAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { childAbort } from "./child-signal.js";
import { aggregate, CancelledError, StepError, toStepError } from "./errors.js";
import type { StepContext } from "./types.js";

export const CODEPENDENT_EXITED = "Codependent step exited";

/**
 * codependent: all children at once; as soon as any one exits, successfully or not, the others
 * are cancelled. A successful exit counts as the error "Codependent step exited", so this
 * action always fails. Failures of the cancelled siblings caused by the cancel are left out.
 */
export async function runCodependentAction(action: CodependentAction, ctx: StepContext): Promise<void> {
  const group = childAbort(ctx.signal);
  const childCtx = { ...ctx, signal: group.signal, source: action.logSource || ctx.source };
  const errors: Array<StepError | undefined> = [];
  try {
    await Promise.all(
      action.actions.map(async (child, i) => {
        try {
          await ctx.runStep(child, childCtx);
          errors[i] = new StepError(CODEPENDENT_EXITED, false);
        } catch (err) {
          const error = toStepError(err);
          if (!(error instanceof CancelledError)) errors[i] = error;
        } finally {
          group.abort();
        }
      }),
    );
  } finally {
    group.dispose();
  }
  if (ctx.signal.aborted) throw new CancelledError();
  throw aggregate(errors.filter((e): e is StepError => e !== undefined)) ?? new CancelledError();
}
