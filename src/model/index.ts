export * from "./errors.js";
export * from "./task-state.js";
export { validateTaskCreateRequest, validateAction, isHttpUrl, isValidRootfs } from "./validate-task.js";
export {
  parseJsonBody,
  decodeTaskCreateRequest,
  taskResponseToJson,
  taskResponseToJsonValue,
  actionToJson,
} from "./task-json.js";
export { writeJson, type JsonValue } from "./json-writer.js";
