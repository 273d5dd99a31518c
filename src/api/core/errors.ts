import { DiegoError, taskNotFound, type DiegoErrorName } from "../../model/index.js";
import { InvalidStateTransitionError, KvRequestError, TaskNotFoundError } from "../../store/index.js";

// The API's one error type is DiegoError (src/model/errors.ts): a name from the contract and a
// message. Each protocol maps a failure to its own status in one place (rest/errors.ts,
// grpc/errors.ts, connect/errors.ts), from what apiFailure says here.

export { DiegoError, type DiegoErrorName };

/** A failed call, in terms every protocol maps. */
export interface ApiFailure {
  name: DiegoErrorName;
  message: string;
  /**
   * Set when the failure is not the client's: "unavailable" when the store did not answer
   * (NATS down or reconnecting; a client may retry), "internal" for any other fault here.
   */
  fault?: "unavailable" | "internal";
}

export function apiFailure(err: unknown): ApiFailure {
  if (err instanceof DiegoError) return { name: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { name: "UnknownError", message, fault: err instanceof KvRequestError ? "unavailable" : "internal" };
}

/** A store error as the API names it: a missing task, or a transition the state refuses. */
export function fromStoreError(err: unknown, guid: string, onTransition: (e: InvalidStateTransitionError) => DiegoError): unknown {
  if (err instanceof TaskNotFoundError) return taskNotFound(guid);
  if (err instanceof InvalidStateTransitionError) return onTransition(err);
  return err;
}

/** A stream's reader fell more than `backlog` messages behind: the stream ends with this. */
export const streamTooSlow = (backlog: number): DiegoError =>
  new DiegoError("StreamTooSlow", `the reader fell more than ${backlog} messages behind; reconnect to go on`);
