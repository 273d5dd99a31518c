import { Code, ConnectError } from "@connectrpc/connect";
import { StacklessError } from "../../model/index.js";
import { apiFailure, type DiegoErrorName } from "../core/errors.js";
import { encodeGrpcMessage } from "./grpc-message.js";

// gRPC's mapping of API errors (Connect uses the same codes, connect/errors.ts): a status code,
// and the REST name leading the message so clients in any language can tell e.g.
// TaskNotDeletable from TaskNotCancelable; the name is also the `diego-error-name` trailer.

const codes: Record<DiegoErrorName, Code> = {
  InvalidJSON: Code.InvalidArgument,
  InvalidTask: Code.InvalidArgument,
  InvalidRequest: Code.InvalidArgument,
  TaskGuidAlreadyExists: Code.AlreadyExists,
  TaskNotFound: Code.NotFound,
  TaskNotDeletable: Code.FailedPrecondition,
  TaskNotCancelable: Code.FailedPrecondition,
  InvalidLRP: Code.InvalidArgument,
  DesiredLRPAlreadyExists: Code.AlreadyExists,
  DesiredLRPNotFound: Code.NotFound,
  ActualLRPIndexNotFound: Code.NotFound,
  ResourceConflict: Code.Aborted,
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
  const f = apiFailure(err);
  // A store that did not answer is a fault a client may retry, which is what UNAVAILABLE tells
  // gRPC clients. (REST keeps the contract's 500 UnknownError.)
  if (f.fault) return { code: f.fault === "unavailable" ? Code.Unavailable : Code.Internal, message: `${f.name}: ${f.message}` };
  return { code: codes[f.name], message: `${f.name}: ${f.message}`, errorName: f.name };
}

/** How a call on the fast path ends when it fails: a status for the trailers. */
export class GrpcCallError extends StacklessError {
  override readonly name = "GrpcCallError";
  constructor(
    readonly code: Code,
    message: string,
    readonly errorName?: string,
  ) {
    super(message);
  }
}

export function asCallError(err: unknown): GrpcCallError {
  if (err instanceof GrpcCallError) return err;
  if (err instanceof ConnectError) return new GrpcCallError(err.code, err.rawMessage, err.metadata.get("diego-error-name") ?? undefined);
  const status = callStatus(err);
  return new GrpcCallError(status.code, status.message, status.errorName);
}

/** The status as gRPC headers or trailers. */
export const statusHeaders = (e: { code: Code; message: string; errorName?: string }): Record<string, string> => ({
  "grpc-status": String(e.code),
  "grpc-message": encodeGrpcMessage(e.message),
  ...(e.errorName ? { "diego-error-name": e.errorName } : {}),
});
