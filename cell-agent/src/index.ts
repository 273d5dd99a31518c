export { startCellAgent, cellSettings, WorkDirInUseError, type CellAgent, type CellAgentOptions } from "./agent/index.js";
export { NetworkConfigError } from "./network/index.js";
