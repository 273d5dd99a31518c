import { StepError } from "./errors.js";

/** Validation makes this unreachable for stored tasks; still fail clearly instead of crashing. */
export function missingChild(kind: string): StepError {
  return new StepError(`invalid ${kind} action: no inner action`, false);
}
