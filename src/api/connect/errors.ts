import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { callStatus } from "../grpc/errors.js";

// Connect's mapping of API errors: gRPC's codes (grpc/errors.ts) as a ConnectError, or as the
// JSON error body and HTTP status where this server writes a Connect reply itself.

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const status = callStatus(err);
  const e = new ConnectError(status.message, status.code);
  if (status.errorName) e.metadata.set("diego-error-name", status.errorName);
  return e;
}

/** A Connect error body: {"code":"not_found","message":"..."}. */
export const connectErrorBody = (code: Code, message: string): string => JSON.stringify({ code: codeToString(code), message });

/** An oversize body is 413 as in REST (Connect's mapping of resource_exhausted would be 429). */
export const connectHttpStatus = (code: Code, errorName?: string): number =>
  errorName === "RequestTooLarge" ? 413 : codeToHttpStatus(code);
