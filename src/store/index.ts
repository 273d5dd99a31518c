export { createKvClient, KvConflictError, KvRequestError, type KvClient, type KvEntry } from "./kv-client.js";
export { createTaskStore, encodeRecord, decodeRecord, isCasConflict, type TaskStore, type StoredTask } from "./task-store.js";
export { createTaskIndex, type TaskIndex, type TaskIndexOptions, type IndexedTask, type IndexListener } from "./task-index.js";
export * as transitions from "./transitions.js";
export { InvalidStateTransitionError, type Outcome, type Transition } from "./transitions.js";
export { TaskNotFoundError, TaskExistsError, TaskContentionError } from "./errors.js";
export { nowNanos, nanosFromMs } from "./clock.js";
export { createCellRegistry, type CellRegistry } from "./cell-registry.js";
export { applyUntilDone, removeUntilDone } from "./apply-until-done.js";
