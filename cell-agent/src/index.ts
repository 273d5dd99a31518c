export { startCellAgent, type CellAgent, type CellAgentOptions } from "./agent/cell-agent.js";
export { WorkDirInUseError } from "./agent/work-dir-claim.js";
