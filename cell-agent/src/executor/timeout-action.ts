import type { TimeoutAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { childAbort } from "./child-signal.js";
import { CancelledError, EmittableError, StepError, toStepError } from "./errors.js";
import { formatGoDuration } from "../../../src/duration/index.js";
import { missingChild } from "./missing-child.js";
import type { StepContext } from "./types.js";

/**
 * timeout: runs the inner action; when it is still running after `timeout` nanoseconds it is
 * cancelled, awaited, and the step fails with "exceeded <Go duration> timeout" (plus
 * "; <inner message>" when the inner failure is an emittable one other than the cancel).
 */
export async function runTimeoutAction(action: TimeoutAction, ctx: StepContext): Promise<void> {
  if (!action.action) throw missingChild("timeout");
  const inner = childAbort(ctx.signal);
  let timedOut = false;
  const cancelTimer = startTimer(Number(action.timeout / 1_000_000n), () => {
    timedOut = true;
    inner.abort();
  });
  let innerError: StepError | undefined;
  try {
    await ctx.runStep(action.action, { ...ctx, signal: inner.signal, source: action.logSource || ctx.source });
  } catch (err) {
    innerError = toStepError(err);
  } finally {
    cancelTimer();
    inner.dispose();
  }
  if (ctx.signal.aborted) throw innerError ?? new CancelledError();
  if (timedOut) throw new EmittableError(timeoutMessage(action.timeout, innerError));
  if (innerError) throw innerError;
}

function timeoutMessage(timeout: bigint, innerError: StepError | undefined): string {
  const message = `exceeded ${formatGoDuration(timeout)} timeout`;
  if (innerError && innerError.emittable && !(innerError instanceof CancelledError)) {
    return `${message}; ${innerError.message}`;
  }
  return message;
}

// setTimeout fires at once for delays over 2^31-1 ms (~24.8 days); chain shorter waits.
const MAX_DELAY_MS = 2 ** 31 - 1;

function startTimer(ms: number, fire: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number): void => {
    timer = setTimeout(() => (left > MAX_DELAY_MS ? arm(left - MAX_DELAY_MS) : fire()), Math.min(Math.max(left, 0), MAX_DELAY_MS));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
