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
} from "./task-json.js";
export { jsonReaderFor, jsonWriterFor, type JsonReader, type JsonWriter } from "./compile-json.js";
export { writeJson, type JsonValue } from "./json-writer.js";
