export class TaskNotFoundError extends Error {
  override readonly name = "TaskNotFoundError";
  constructor(readonly taskGuid: string) {
    super(`task with guid '${taskGuid}' not found`);
  }
}

export class TaskExistsError extends Error {
  override readonly name = "TaskExistsError";
  constructor(readonly taskGuid: string) {
    super("task already exists");
  }
}

/** Too many concurrent writers kept winning the compare-and-swap; the caller may retry. */
export class TaskContentionError extends Error {
  override readonly name = "TaskContentionError";
  constructor(readonly taskGuid: string) {
    super(`task '${taskGuid}' is being changed by too many writers at once`);
  }
}
