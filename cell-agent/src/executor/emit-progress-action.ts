import type { EmitProgressAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { toStepError } from "./errors.js";
import { missingChild } from "./missing-child.js";
import type { StepContext } from "./types.js";

/**
 * emit_progress: writes start_message before the inner action and success_message after it
 * succeeds (stdout), or failure_message_prefix[: <emittable error>] when it fails (stderr).
 * Its own lines use its log_source; the inner action keeps the parent's source. The inner
 * result passes through unchanged.
 */
export async function runEmitProgressAction(action: EmitProgressAction, ctx: StepContext): Promise<void> {
  if (!action.action) throw missingChild("emit_progress");
  const own = ctx.logs.source(action.logSource || ctx.source);
  if (action.startMessage) own.line(action.startMessage);
  try {
    await ctx.runStep(action.action, ctx);
  } catch (err) {
    const error = toStepError(err);
    if (action.failureMessagePrefix) {
      const detail = error.emittable ? `: ${error.message}` : "";
      own.line(`${action.failureMessagePrefix}${detail}`, "stderr");
    }
    throw error;
  }
  if (action.successMessage) own.line(action.successMessage);
}
