// Step failures. `message` is what users see as failure_reason, so it stays short.
// "Emittable" follows Diego: only emittable messages are repeated by emit_progress failure
// lines and appended to a timeout's message; other errors (bugs, raw I/O errors) are not.

export class StepError extends Error {
  constructor(
    message: string,
    readonly emittable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StepError";
  }
}

/** An emittable failure: its text goes into the log stream and the failure reason. */
export class EmittableError extends StepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, true, options);
    this.name = "EmittableError";
  }
}

/** The step stopped because its signal was aborted (task cancel, timeout, codependent exit). */
export class CancelledError extends StepError {
  constructor() {
    super("cancelled", false);
    this.name = "CancelledError";
  }
}

/**
 * Several failures of parallel or codependent children, on one line joined by "; " (as the
 * 2015 codependent step formatted them). One error is passed through unchanged instead.
 */
export class AggregateStepError extends StepError {
  constructor(readonly errors: StepError[]) {
    super(errors.map((e) => e.message).join("; "), false);
    this.name = "AggregateStepError";
  }
}

export function aggregate(errors: StepError[]): StepError | undefined {
  if (errors.length === 0) return undefined;
  if (errors.length === 1) return errors[0];
  return new AggregateStepError(errors);
}

/** Anything thrown below a step becomes a StepError; unknown errors keep a short first line. */
export function toStepError(err: unknown): StepError {
  if (err instanceof StepError) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new StepError(firstLine(text), false, { cause: err });
}

export function firstLine(text: string, max = 200): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
