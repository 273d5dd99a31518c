export * from "./errors.js";
export * from "./task-state.js";
export {
  validateTaskCreateRequest,
  validateAction,
  isHttpUrl,
  isValidRootfs,
  isValidTaskGuid,
  actionDepth,
  MAX_TASK_GUID_LENGTH,
  MAX_ACTION_DEPTH,
} from "./validate-task.js";
export {
  parseJsonBody,
  decodeTaskCreateRequest,
  taskResponseToJson,
  taskResponseToJsonValue,
  actionToJson,
} from "./task-json.js";
export { writeJson, type JsonValue } from "./json-writer.js";
