import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import type { TaskResponse } from "../../../src/gen/diego/v1/task_pb.js";
import { CANCELLED_REASON } from "../../../src/model/index.js";
import { createDownloadCache } from "./download-cache.js";
import { toStepError } from "./errors.js";
import { readResultFile } from "./result-file.js";
import { countActions, runStep } from "./run-step.js";
import type { ExecuteDeps, ExecuteResult, StepContext } from "./types.js";

export const RESULT_FETCH_FAILED = "failed to fetch result";

/**
 * Runs a task's action tree in its (already created) sandbox, then reads result_file when the
 * action succeeded. Never rejects: every failure becomes { failed: true, failureReason }.
 */
export async function executeTask(task: TaskResponse, deps: ExecuteDeps): Promise<ExecuteResult> {
  const logger = deps.logger ?? pino({ level: "silent" });
  if (!task.action) return failed("invalid action type");
  // Without the cell's cache a task that downloads gets a private one, removed afterwards.
  const needsOwnCache = !deps.downloadCache && countActions(task.action, ["download"]) > 0;
  const ownCacheDir = needsOwnCache ? await mkdtemp(path.join(os.tmpdir(), "diego-downloads-")) : undefined;
  const ctx: StepContext = {
    sandbox: deps.sandbox,
    logs: deps.logs,
    downloads: deps.downloadCache ?? createDownloadCache({ dir: ownCacheDir ?? os.tmpdir(), logger }),
    signal: deps.signal,
    logger,
    source: deps.logs.defaultSource,
    defaultUser: deps.defaultUser ?? "",
    runStep,
    // Exactly one process in the whole task: the sandbox may start it in one runtime call.
    singleProcess: { available: countActions(task.action, ["run", "download"]) === 1 },
  };
  try {
    return await execute(task, ctx);
  } finally {
    await deps.logs.flush().catch((err: unknown) => logger.warn({ err }, "cannot flush task logs"));
    if (ownCacheDir) await rm(ownCacheDir, { recursive: true, force: true });
  }
}

async function execute(task: TaskResponse, ctx: StepContext): Promise<ExecuteResult> {
  try {
    await runStep(task.action!, ctx);
  } catch (err) {
    if (ctx.signal.aborted) return failed(CANCELLED_REASON);
    const error = toStepError(err);
    ctx.logger.info({ reason: error.message }, "task failed");
    return failed(error.message);
  }
  if (ctx.signal.aborted) return failed(CANCELLED_REASON);
  if (!task.resultFile) return { failed: false, failureReason: "", result: "" };
  try {
    return { failed: false, failureReason: "", result: await readResultFile(ctx.sandbox.rootfsPath, task.resultFile) };
  } catch (err) {
    ctx.logger.info({ err: (err as Error).message, resultFile: task.resultFile }, "cannot read result file");
    return failed(RESULT_FETCH_FAILED);
  }
}

function failed(failureReason: string): ExecuteResult {
  return { failed: true, failureReason, result: "" };
}
