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
export type { CellBid, LrpPlacementRequest, PlacementRequest, Room } from "./placement.js";
export { formatIpv4, parseDestination, parseIpv4, ruleDestinations, type AddressRange } from "./validate-rules.js";
export { decoderFor, encoderFor } from "./codecs.js";
export { FastReader } from "./fast-reader.js";
export { FastWriter } from "./fast-writer.js";
export { capFailureReason, maxNewRecordBytes, RecordTooLargeError, MAX_FAILURE_REASON_BYTES } from "./record-limits.js";
export * as lrpTransitions from "./lrp-transitions.js";
export { DEFAULT_CRASH_POLICY, shouldRestart, restartAt, type CrashPolicy } from "./lrp-crash-policy.js";
export { MAX_ROUTES_BYTES } from "./validate-lrp.js";
export { DEFAULT_MAX_PAYLOAD } from "./record-limits.js";
export {
  decodeDesiredLRPCreateRequest,
  decodeDesiredLRPUpdateRequest,
  desiredLRPToJson,
  actualLRPToJson,
  desiredLRPFromJson,
  actualLRPFromJson,
  lrpEventToSse,
  type LrpSse,
} from "./lrp-json.js";
export { validateDesiredLRPCreateRequest, validateDesiredLRPUpdateRequest, MAX_LRP_INSTANCES } from "./validate-lrp.js";
export { parseDomainMaxAge, domainProblem, type MaxAge } from "./domain-freshness.js";
export { parseActualIndex, type ParsedIndex } from "./lrp-index.js";
