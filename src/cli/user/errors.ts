// The CLI's failures, each with the exit code it ends the process with.

/** The user got the command line wrong (exit 2). */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitCode = 2;
}

/** The API answered with an error: its `name` and `message` are shown (exit 1). */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly exitCode = 1;
  constructor(
    readonly errorName: string,
    message: string,
    readonly status: number,
  ) {
    super(`${errorName}: ${message}`);
  }
}

/** Nothing answered at the API's URL (exit 1). */
export class ApiUnreachableError extends Error {
  override readonly name = "ApiUnreachableError";
  readonly exitCode = 1;
  constructor(url: string, cause: string) {
    super(`cannot reach the API at ${url} (${cause}); is the receptor running? Set --api or DIEGO_API`);
  }
}

/** A stream of events or log lines ended while the CLI still needed it (exit 1). */
export class StreamEndedError extends Error {
  override readonly name = "StreamEndedError";
  readonly exitCode = 1;
}

/** Exit codes of `diego task run`, and of every command on an error. */
export const EXIT = { ok: 0, error: 1, usage: 2, taskFailed: 3, interrupted: 130 } as const;

export function exitCodeOf(err: unknown): number {
  const code = (err as { exitCode?: unknown }).exitCode;
  return typeof code === "number" ? code : EXIT.error;
}
