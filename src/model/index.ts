export * from "./errors.js";
export * from "./task-state.js";
export { actionChildren, actionDepth, countActions, presentChildren, visitAction, type ActionCase, type ActionTable, type ActionValue } from "./action-tree.js";
export {
  validateTaskCreateRequest,
  validateAction,
  isHttpUrl,
  isValidRootfs,
  isValidTaskGuid,
  MAX_TASK_GUID_LENGTH,
  MAX_ACTION_DEPTH,
} from "./validate-task.js";
export {
  parseJsonBody,
  decodeTaskCreateRequest,
  taskResponseToJson,
} from "./task-json.js";
export { jsonReaderFor, jsonWriterFor, type JsonReader, type JsonWriter } from "./compile-json.js";
export { writeJson, type JsonValue } from "./json-writer.js";
