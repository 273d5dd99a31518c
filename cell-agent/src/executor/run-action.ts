import type { RunAction } from "../../../src/gen/diego/v1/actions_pb.js";
import type { ProcessResult, ProcessSpec } from "../sandbox/index.js";
import { CancelledError, EmittableError, toStepError } from "./errors.js";
import type { StepContext } from "./types.js";

/**
 * run: one process in the container. Exit 0 succeeds; otherwise "Exited with status N"
 * (with " (out of memory)" when the container's memory limit killed it). Writes "Exit status N"
 * to its log source when the process ends. Cancel kills the process at once.
 */
export async function runRunAction(action: RunAction, ctx: StepContext): Promise<void> {
  if (ctx.signal.aborted) throw new CancelledError();
  const out = ctx.logs.source(action.logSource || ctx.source);
  const proc: ProcessSpec = {
    path: action.path,
    args: action.args,
    // The container env (image env, then task env) is already on the sandbox; the sandbox
    // appends these after it, a later NAME replacing an earlier one.
    env: action.env.map((e) => `${e.name}=${e.value}`),
    dir: action.dir || undefined,
    user: action.user || ctx.defaultUser || undefined,
    nofile: Number(action.resourceLimits?.nofile ?? 0n),
  };
  let result: ProcessResult;
  try {
    result = await startProcess(proc, { stdout: out.stdout, stderr: out.stderr }, ctx);
  } catch (err) {
    out.end();
    ctx.logger.warn({ err, path: action.path }, "process could not run");
    throw toStepError(err);
  }
  out.end();
  const oom = result.exitCode !== 0 && result.oomKilled ? " (out of memory)" : "";
  out.line(`Exit status ${result.exitCode}${oom}`);
  if (ctx.signal.aborted) throw new CancelledError();
  if (result.exitCode !== 0) throw new EmittableError(`Exited with status ${result.exitCode}${oom}`);
}

function startProcess(proc: ProcessSpec, io: { stdout(c: Buffer): void; stderr(c: Buffer): void }, ctx: StepContext): Promise<ProcessResult> {
  const { sandbox } = ctx;
  const withStart = ctx.processStarted ? { ...io, onStart: ctx.processStarted } : io;
  // A task that is this one process can use the sandbox's single-invocation path.
  if (ctx.singleProcess.available && sandbox.runOnce) {
    ctx.singleProcess.available = false;
    return sandbox.runOnce(proc, withStart, ctx.signal, { asChild: ctx.singleProcess.asChild });
  }
  ctx.singleProcess.available = false;
  return sandbox.run(proc, withStart, ctx.signal);
}
