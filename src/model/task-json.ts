import { TaskCreateRequestSchema, TaskResponseSchema, type TaskCreateRequest, type TaskResponse } from "../gen/diego/v1/task_pb.js";
import { jsonReaderFor, jsonWriterFor } from "./compile-json.js";
import { DiegoError } from "./errors.js";
import { markEmptyPorts } from "./validate-rules.js";

// The REST JSON of tasks: snake_case keys exactly as the seeds write them, generated from the
// protobuf descriptors (compile-json.ts; the differences from protobuf JSON are in
// json-rules.ts). Decoding checks every JSON type like Go's encoding/json did (a wrong type is
// InvalidJSON naming the field), but reports every wrong field at once rather than the first;
// unknown keys are ignored and null means "absent". Compiled when this module loads.

/** Parses a request body; malformed JSON is InvalidJSON with the parser's reason. */
export function parseJsonBody(body: string): unknown {
  if (body.trim() === "") throw new DiegoError("InvalidJSON", "request body is empty");
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new DiegoError("InvalidJSON", `malformed JSON: ${(err as Error).message}`);
  }
}

const readTaskCreateRequest: (json: unknown) => TaskCreateRequest = jsonReaderFor(TaskCreateRequestSchema);

/** A parsed request body as a TaskCreateRequest; every wrong type is one InvalidJSON. */
export function decodeTaskCreateRequest(json: unknown): TaskCreateRequest {
  const req = readTaskCreateRequest(json);
  // protobuf cannot tell `"ports": []` (invalid, as in 2015) from no ports: the raw JSON can.
  const rules = (json as { security_group_rules?: unknown }).security_group_rules;
  if (Array.isArray(rules)) {
    rules.forEach((raw: unknown, i) => {
      const ports = (raw as { ports?: unknown } | null)?.ports;
      const rule = req.securityGroupRules[i];
      if (rule && Array.isArray(ports) && ports.length === 0) markEmptyPorts(rule);
    });
  }
  return req;
}

/** A task as REST JSON text (GET, lists, events and completion callbacks). */
export const taskResponseToJson: (task: TaskResponse) => string = jsonWriterFor(TaskResponseSchema);
