export { startConverger, type Converger, type ConvergerOptions } from "./start-converger.js";
export { lrpConvergePass, nextDueAt, stopMessage, type LrpPassReport, type LrpCells, type LrpPassDeps } from "./lrp-pass.js";
export { convergePass, type PassReport, type PassDeps } from "./converge-pass.js";
export {
  decide,
  NOT_STARTED_REASON,
  NOT_CLAIMED_REASON,
  CELL_DISAPPEARED_REASON,
  type Decision,
  type ConvergeLimits,
  type LiveCells,
} from "./decide.js";
export { ConvergerOptionsError, DecisionChangedError } from "./errors.js";
export { convergerSettings, convergerOwnSettings, CONVERGER_DEFAULTS } from "./settings.js";
