// One error type for the whole API, with a code that each transport maps to its own status
// (REST status + {"name","message"}, gRPC/Connect codes). Named after the receptor's errors.

export type DiegoErrorName =
  | "InvalidJSON"
  | "InvalidTask"
  | "InvalidRequest"
  | "TaskGuidAlreadyExists"
  | "TaskNotFound"
  | "TaskNotDeletable"
  | "TaskNotCancelable"
  /** LRPs (contract section 7, the 2015 receptor's names). */
  | "InvalidLRP"
  | "DesiredLRPAlreadyExists"
  | "DesiredLRPNotFound"
  | "ActualLRPIndexNotFound"
  /** Too many writers changed one record at once; the client may retry. */
  | "ResourceConflict"
  | "RequestTooLarge"
  /** A stream's reader fell too far behind; the stream ends (the client may reconnect). */
  | "StreamTooSlow"
  | "Unauthorized"
  | "UnknownError";

/**
 * An answer to a client rather than a fault, so without a stack trace: capturing one costs up to
 * 14 µs under tsx (measured 12 frames deep), paid by every bad request.
 */
export class StacklessError extends Error {
  constructor(message: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }
}

export class DiegoError extends StacklessError {
  override readonly name = "DiegoError";
  constructor(
    readonly code: DiegoErrorName,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Input quoted in an error is cut to this many characters, so a reply stays small (a gRPC
 * status travels in a header); more than the longest valid guid (255), which is quoted whole.
 */
export const ECHO_MAX_CHARS = 300;

/** `value` as an error message quotes it: at most ECHO_MAX_CHARS characters, then an ellipsis. */
export const echo = (value: string): string => (value.length > ECHO_MAX_CHARS ? `${value.slice(0, ECHO_MAX_CHARS)}…` : value);

export const taskNotFound = (guid: string): DiegoError =>
  new DiegoError("TaskNotFound", `task with guid '${echo(guid)}' not found`);

export const taskAlreadyExists = (): DiegoError =>
  new DiegoError("TaskGuidAlreadyExists", "task already exists");

export const taskNotDeletable = (): DiegoError =>
  new DiegoError(
    "TaskNotDeletable",
    "This task has not been completed. Please retry when it is completed.",
  );

export const taskNotCancelable = (state: string): DiegoError =>
  new DiegoError("TaskNotCancelable", `task is ${state} and can no longer be cancelled`);

/** One wording for an oversize body in every protocol: "too large", naming the limit. */
export const bodyTooLarge = (limit: number): DiegoError =>
  new DiegoError("RequestTooLarge", `request body is too large: over the limit of ${limit} bytes`);
