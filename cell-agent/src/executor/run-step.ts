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

/** Runs one action of any type; wrappers reach their children through ctx.runStep. */
export function runStep(action: Action, ctx: StepContext): Promise<void> {
  const a = action.action;
  switch (a.case) {
    case "run":
      return runRunAction(a.value, ctx);
    case "download":
      return runDownloadAction(a.value, ctx);
    case "upload":
      return runUploadAction(a.value, ctx);
    case "timeout":
      return runTimeoutAction(a.value, ctx);
    case "emitProgress":
      return runEmitProgressAction(a.value, ctx);
    case "try":
      return runTryAction(a.value, ctx);
    case "parallel":
      return runParallelAction(a.value, ctx);
    case "serial":
      return runSerialAction(a.value, ctx);
    case "codependent":
      return runCodependentAction(a.value, ctx);
    default:
      return Promise.reject(new StepError("invalid action type", false));
  }
}

type ActionCase = NonNullable<Action["action"]["case"]>;

/** How many actions of the given types a tree holds (a download unpacks with one process). */
export function countActions(action: Action | undefined, kinds: ReadonlyArray<ActionCase>): number {
  const a = action?.action;
  if (!a?.case) return 0;
  if (kinds.includes(a.case)) return 1;
  switch (a.case) {
    case "timeout":
    case "emitProgress":
    case "try":
      return countActions(a.value.action, kinds);
    case "parallel":
    case "serial":
    case "codependent":
      return a.value.actions.reduce((n, child) => n + countActions(child, kinds), 0);
    default:
      return 0;
  }
}
