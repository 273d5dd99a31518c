// The cell's sandbox: runc/crun OCI containers for tasks (see README.md in this folder).
// Start with createSandboxRuntime(); types.ts is the contract with the executor.
export type {
  SandboxNetwork,
  NamespaceFiles,
  NamespaceOwner,
  BindMount,
  ProcessIO,
  ProcessResult,
  ProcessSpec,
  RunOnceOptions,
  Sandbox,
  SandboxLimits,
  SandboxRuntime,
  SandboxSpec,
} from "./types.js";
export { createSandboxRuntime, type SandboxRuntimeOptions } from "./runtime.js";
export { cellKey, cpuShares, parentCgroup } from "./cgroups.js";
export { START_FAILURE_EXIT_CODE } from "./supervise.js";
/** Reads a small file of a container's rootfs without following the image's symlinks (result files). */
export { readSmallFileInRootfs } from "./safe-path.js";
/** Opens files of a container's rootfs by file descriptor, symlinks resolved inside it. */
export { openFileInRoot, readFileHeadInRoot, RootfsPathError } from "./rootfs-file.js";
export { removeTree } from "./remove-tree.js";
export { HIDDEN_BUSYBOX } from "./oci-config.js";
export {
  CommandError,
  RuntimeUnavailableError,
  SandboxError,
  SandboxStateError,
  UnknownUserError,
} from "./errors.js";
export { hostHelper } from "./host-helper.js";
export { createHelperProcess, type HelperProcess } from "./helper-process.js";
export {
  createStartQueue,
  releaseOnFirstStart,
  InvalidStartLimitError,
  type StartQueue,
  type StartQueueState,
  type StartSlot,
} from "./start-queue.js";
