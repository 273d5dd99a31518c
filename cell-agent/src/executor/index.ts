export { executeTask, RESULT_FETCH_FAILED } from "./execute-task.js";
export type { ExecuteDeps, ExecuteResult } from "./types.js";
export {
  createDownloadCache,
  DEFAULT_MAX_CONCURRENT_DOWNLOADS,
  DownloadError,
  type DownloadCache,
  type DownloadCacheOptions,
  type DownloadedFile,
  type DownloadRequest,
} from "./download-cache.js";
export { AggregateStepError, CancelledError, EmittableError, StepError } from "./errors.js";
export { formatByteSize } from "./byte-size.js";
export { RESULT_MAX_BYTES } from "./result-file.js";
export { CODEPENDENT_EXITED } from "./codependent-action.js";
export { DOWNLOAD_FAILED, COPY_IN_FAILED } from "./download-action.js";
export { COPY_OUT_FAILED } from "./upload-action.js";
// For the LRP instance runner (cell-agent/src/lrp), which composes steps itself.
export { runStep } from "./run-step.js";
export type { StepContext } from "./types.js";
export { childAbort, type ChildAbort } from "./child-signal.js";
export { aggregate, toStepError } from "./errors.js";
