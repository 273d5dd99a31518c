// The cell side of LRPs: one long-lived container per instance (see docs/lrp-instances.md).
export { startLrpInstance } from "./instance-runner.js";
export {
  DEFAULT_LRP_TIMING,
  type InstancePhase,
  type LrpInstance,
  type LrpInstanceEvents,
  type LrpInstanceSpec,
  type LrpRunnerDeps,
  type LrpTiming,
  type PortMapping,
  type RunningInfo,
} from "./types.js";
export { CONTAINER_INIT_FAILED, InvalidLrpInstanceError, NoNetworkForPortsError } from "./errors.js";
export { instanceContainerId } from "./container-id.js";
export { containerEnv, networkEnv } from "./instance-env.js";
export { createStartSlots, type StartSlots } from "./start-slots.js";
