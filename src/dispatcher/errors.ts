/** The task is not (or no longer) due for a callback round: another dispatcher, a DELETE or time moved it on. */
export class CallbackNotDueError extends Error {
  override readonly name = "CallbackNotDueError";
  constructor(readonly taskGuid: string) {
    super(`task '${taskGuid}' is not due for a callback`);
  }
}

/** The RESOLVING record this dispatcher took was changed by someone else (converger, DELETE). */
export class CallbackTakenOverError extends Error {
  override readonly name = "CallbackTakenOverError";
  constructor(readonly taskGuid: string) {
    super(`task '${taskGuid}' was taken over while its callback was in flight`);
  }
}

export class CallbackTimeoutError extends Error {
  override readonly name = "CallbackTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`callback did not answer within ${timeoutMs}ms`);
  }
}
