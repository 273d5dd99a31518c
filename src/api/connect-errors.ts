import { Code, ConnectError } from "@connectrpc/connect";
import { DiegoError, type DiegoErrorName } from "../model/errors.js";
import { KvRequestError } from "../store/index.js";

// gRPC/Connect status for each API error; the REST name leads the message so clients in any
// language can tell e.g. TaskNotDeletable from TaskNotCancelable.
const codes: Record<DiegoErrorName, Code> = {
  InvalidJSON: Code.InvalidArgument,
  InvalidTask: Code.InvalidArgument,
  InvalidRequest: Code.InvalidArgument,
  TaskGuidAlreadyExists: Code.AlreadyExists,
  TaskNotFound: Code.NotFound,
  TaskNotDeletable: Code.FailedPrecondition,
  TaskNotCancelable: Code.FailedPrecondition,
  RequestTooLarge: Code.ResourceExhausted,
  StreamTooSlow: Code.ResourceExhausted,
  Unauthorized: Code.Unauthenticated,
  UnknownError: Code.Internal,
};

/** What a failed call ends with over gRPC and Connect. */
export interface CallStatus {
  code: Code;
  /** The REST error name first: `TaskNotFound: task with guid 'x' not found`. */
  message: string;
  /** Also sent as the `diego-error-name` trailer. */
  errorName?: DiegoErrorName;
}

export function callStatus(err: unknown): CallStatus {
  if (err instanceof DiegoError) return { code: codes[err.code], message: `${err.code}: ${err.message}`, errorName: err.code };
  // JetStream did not answer (NATS down, or reconnecting): a fault a client may retry, which is
  // what UNAVAILABLE tells gRPC clients. REST keeps the contract's 500 UnknownError.
  const code = err instanceof KvRequestError ? Code.Unavailable : Code.Internal;
  return { code, message: `UnknownError: ${err instanceof Error ? err.message : String(err)}` };
}

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const status = callStatus(err);
  const e = new ConnectError(status.message, status.code);
  if (status.errorName) e.metadata.set("diego-error-name", status.errorName);
  return e;
}
