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
  InvalidStateTransition: Code.FailedPrecondition,
  Unauthorized: Code.Unauthenticated,
  UnknownError: Code.Internal,
};

/** The gRPC/Connect code an API error travels as. */
export const codeFor = (name: DiegoErrorName): Code => codes[name];

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DiegoError) {
    const e = new ConnectError(`${err.code}: ${err.message}`, codes[err.code]);
    e.metadata.set("diego-error-name", err.code);
    return e;
  }
  // JetStream did not answer (NATS down, or reconnecting): a fault a client may retry, which is
  // what UNAVAILABLE tells gRPC clients. REST keeps the contract's 500 UnknownError.
  const code = err instanceof KvRequestError ? Code.Unavailable : Code.Internal;
  return new ConnectError(`UnknownError: ${err instanceof Error ? err.message : String(err)}`, code);
}
