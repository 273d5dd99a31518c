import type { Action } from "../../../src/gen/diego/v1/actions_pb.js";
import { runCodependentAction } from "./codependent-action.js";
import { runDownloadAction } from "./download-action.js";
import { runEmitProgressAction } from "./emit-progress-action.js";
import { StepError } from "./errors.js";
import { runParallelAction } from "./parallel-action.js";
import { runRunAction } from "./run-action.js";
import { runSerialAction } from "./serial-action.js";
import { runTimeoutAction } from "./timeout-action.js";
import { runTryAction } from "./try-action.js";
import { runUploadAction } from "./upload-action.js";
import type { StepContext } from "./types.js";
import { countActions, visitAction, type ActionTable } from "../../../src/model/index.js";

/** Each action type's executor; wrappers reach their children through ctx.runStep. */
const executors: ActionTable<Promise<void>, [StepContext]> = {
  run: runRunAction,
  download: runDownloadAction,
  upload: runUploadAction,
  timeout: runTimeoutAction,
  emitProgress: runEmitProgressAction,
  try: runTryAction,
  parallel: runParallelAction,
  serial: runSerialAction,
  codependent: runCodependentAction,
};

/** Runs one action of any type. */
export function runStep(action: Action, ctx: StepContext): Promise<void> {
  return visitAction(action, executors, () => Promise.reject(new StepError("invalid action type", false)), ctx);
}

/** How many actions of the given types a tree holds (a download unpacks with one process). */
export { countActions };
