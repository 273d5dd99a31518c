export { startCellAgent, type CellAgent, type CellAgentOptions, type NetworkSettings } from "./cell-agent.js";
export { WorkDirInUseError } from "./work-dir-claim.js";
export { usableRuntime, type UsableRuntimeOptions } from "./usable-runtime.js";
export { cellSettings } from "./settings.js";
export type { RootfsResolver } from "./rootfs-resolver.js";
