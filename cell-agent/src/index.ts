export { startCellAgent, type CellAgent, type CellAgentOptions } from "./agent/cell-agent.js";
