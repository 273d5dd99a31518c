import type { Logger } from "pino";
import { apiFailure, DiegoError, type DiegoErrorName } from "../core/errors.js";
import { ClientGoneError } from "../http/read-body.js";
import type { Res } from "../http/types.js";
import { sendJson } from "./reply.js";

// REST's mapping of API errors: an HTTP status and {"name","message"} (contract section 3). A
// server fault is 500 UnknownError; bad input never is.

export const statuses: Record<DiegoErrorName, number> = {
  InvalidJSON: 400,
  InvalidTask: 400,
  InvalidRequest: 400,
  TaskGuidAlreadyExists: 409,
  TaskNotFound: 404,
  TaskNotDeletable: 409,
  TaskNotCancelable: 409,
  InvalidLRP: 400,
  DesiredLRPAlreadyExists: 409,
  DesiredLRPNotFound: 404,
  ActualLRPIndexNotFound: 404,
  ResourceConflict: 409,
  RequestTooLarge: 413,
  StreamTooSlow: 429,
  Unauthorized: 401,
  UnknownError: 500,
};

export function sendError(res: Res, status: number, name: string, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, status, JSON.stringify({ name, message }));
}

/** Answers a request whose handler failed with `err`. */
export function sendFailure(res: Res, err: unknown, path: string, logger?: Logger): void {
  if (!(err instanceof DiegoError) && (err instanceof ClientGoneError || res.destroyed)) {
    // Not a fault: the client closed the connection mid-request.
    logger?.debug({ err, path }, "client went before the reply");
    res.end();
    return;
  }
  const failure = apiFailure(err);
  if (failure.fault) logger?.error({ err, path }, "request failed");
  sendError(res, statuses[failure.name], failure.name, failure.message);
}

/** The `data` of an SSE `error` event: the same {"name","message"} as a reply's body. */
export const errorEventData = (err: unknown): string => {
  const { name, message } = apiFailure(err);
  return JSON.stringify({ name, message });
};
