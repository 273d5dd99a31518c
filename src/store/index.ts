export { createKvClient, KvConflictError, KvRequestError, type KvClient, type KvEntry } from "./kv-client.js";
export { createTaskStore, encodeRecord, decodeRecord, isCasConflict, type TaskStore, type StoredTask, type Applied } from "./task-store.js";
export { createTaskIndex, taskKind, IndexedTask, type TaskIndex, type TaskIndexOptions, type TaskView, type IndexListener } from "./task-index.js";
export {
  createRecordIndex,
  defineView,
  defineBytesView,
  RecordEntry,
  type EntryContext,
  type ViewCache,
  type RecordIndex,
  type RecordIndexOptions,
  type RecordKind,
  type RecordView,
  type RecordWrites,
  type RecordWriteListener,
} from "./record-index.js";
export { ByteArena, NO_HANDLE, type ArenaHandle, type ArenaStats } from "./byte-arena.js";
export * as transitions from "./transitions.js";
export { InvalidStateTransitionError, type Outcome, type Transition } from "./transitions.js";
export { TaskNotFoundError, TaskExistsError, TaskContentionError } from "./errors.js";
export { nowNanos, nanosFromMs } from "./clock.js";
export { createCellRegistry, type CellRegistry } from "./cell-registry.js";
export { applyUntilDone, removeUntilDone } from "./apply-until-done.js";
export { cellTtlSettings, completionSettings, lrpCrashSettings, evacuationSettings, crashPolicyFrom } from "./settings.js";
export { createLrpStore, actualKey, evacuatingKey, isFresh, resolveActuals, type LrpStore, type LrpStoreOptions, type StopRequest, type ListActualsFilter, type Stored as StoredLrp, type Change as LrpChange } from "./lrp-store.js";
export { ActualLRPExistsError, ActualLRPNotFoundError, DesiredLRPExistsError, DesiredLRPNotFoundError, DesiredLRPTooLargeError, LrpContentionError } from "./lrp-errors.js";
export { startLrpWatch, lrpEventDomain, type LrpWatch, type LrpEventListener } from "./lrp-watch.js";
export { startResilientWatch, type ResilientWatch, type ResilientWatchOptions } from "./kv-watch.js";
