import type { SerialAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { CancelledError } from "./errors.js";
import type { StepContext } from "./types.js";

/**
 * serial: children one after another; the first failure stops it and is its failure.
 * Its log_source is ignored on purpose (Diego 2015): children keep the parent's source.
 */
export async function runSerialAction(action: SerialAction, ctx: StepContext): Promise<void> {
  for (const child of action.actions) {
    if (ctx.signal.aborted) throw new CancelledError();
    await ctx.runStep(child, ctx);
  }
}
