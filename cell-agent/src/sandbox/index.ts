export type {
  BindMount,
  ProcessIO,
  ProcessResult,
  ProcessSpec,
  Sandbox,
  SandboxLimits,
  SandboxRuntime,
  SandboxSpec,
} from "./types.js";
export { createSandboxRuntime, type SandboxRuntimeOptions } from "./runtime.js";
export { cellKey, cpuShares, parentCgroup } from "./cgroups.js";
export { shiftedLayerPath } from "./shifted-layers.js";
export { START_FAILURE_EXIT_CODE } from "./supervise.js";
export {
  CommandError,
  RuntimeUnavailableError,
  SandboxError,
  SandboxStateError,
  UnknownUserError,
} from "./errors.js";
