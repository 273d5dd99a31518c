export { startCellAgent, type CellAgent, type CellAgentOptions } from "./agent/cell-agent.js";
export { WorkDirInUseError } from "./agent/work-dir-claim.js";
export { NetworkConfigError } from "./network/index.js";
export { cellSettings } from "./agent/settings.js";
