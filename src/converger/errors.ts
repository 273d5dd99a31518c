/** The fresh record no longer calls for what the pass decided: someone else moved the task on. */
export class DecisionChangedError extends Error {
  override readonly name = "DecisionChangedError";
  constructor(readonly taskGuid: string) {
    super(`task '${taskGuid}' changed since the convergence pass looked at it`);
  }
}

export class ConvergerOptionsError extends Error {
  override readonly name = "ConvergerOptionsError";
}
