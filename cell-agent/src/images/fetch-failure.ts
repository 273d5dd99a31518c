import { ImagePullError } from "./errors.js";
import type { RequestTimer } from "./request-timer.js";

/** Turns a thrown fetch/stream error into an ImagePullError that says why the registry could not be used. */
export function fetchFailure(err: unknown, host: string, what: string, timer: RequestTimer, caller?: AbortSignal) {
  if (err instanceof ImagePullError) return err;
  if (caller?.aborted) return new ImagePullError("aborted", `image pull aborted while ${what}`, { cause: err });
  if (timer.timedOut) {
    return new ImagePullError("timeout", `registry timed out: ${host} sent nothing for ${timer.ms} ms while ${what}`, {
      cause: err,
    });
  }
  return new ImagePullError("unreachable", `registry unreachable: ${host} (${networkDetail(err)}) while ${what}`, {
    cause: err,
  });
}

/** undici hides the useful part ("connect ECONNREFUSED 127.0.0.1:1") in error.cause. */
function networkDetail(err: unknown): string {
  let current: unknown = err;
  let message = "unknown error";
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    message = current.message;
    current = current.cause;
  }
  return message;
}
