import type { Action } from "../gen/diego/v1/actions_pb.js";
import type { DesiredLRPCreateRequest, DesiredLRPUpdateRequest, Routes } from "../gen/diego/v1/lrp_pb.js";
import { actionDepth } from "./action-tree.js";
import { validateRule } from "./validate-rules.js";
import { isValidRootfs, isValidTaskGuid, MAX_ACTION_DEPTH, validateAction } from "./validate-task.js";

// Validation of DesiredLRP create and update requests in the order and words of 2015's bbs
// (reference 1.2 and 1.5), every problem at once; callers join them with ", " into one 400
// InvalidLRP. Where 2015 let bad input through to a 500 (negative memory_mb or disk_mb, a blank
// env name) or to an InvalidJSON (a port over 65535), the item is added after 2015's own, so the
// answer is always a 400 naming the field (contract section 7).

const MAX_ANNOTATION_BYTES = 10 * 1024;
/** The routes' values together, as JSON text. */
export const MAX_ROUTES_BYTES = 4096;
/**
 * Not a 2015 limit: each instance is a stored record and an auction entry, and a typo of a few
 * digits must not make two billion of them.
 */
export const MAX_LRP_INSTANCES = 10_000;
const MAX_PORT = 65535;

const invalid = (field: string): string => `Invalid field: ${field}`;
export const INVALID_ACTION_TYPE = "invalid action type";

export function validateDesiredLRPCreateRequest(req: DesiredLRPCreateRequest): string[] {
  const problems: string[] = [];
  if (req.domain === "") problems.push(invalid("domain"));
  if (!isValidTaskGuid(req.processGuid)) problems.push(invalid("process_guid"));
  // Two checks, as in 2015: an empty rootfs is named twice.
  if (req.rootfs === "") problems.push(invalid("rootfs"));
  if (!isValidRootfs(req.rootfs)) problems.push(invalid("rootfs"));
  if (req.setup) problems.push(...optionalAction("setup", req.setup));
  if (!req.action || req.action.action.case === undefined) problems.push(INVALID_ACTION_TYPE);
  else problems.push(...actionProblems("action", req.action));
  if (req.monitor) problems.push(...optionalAction("monitor", req.monitor));
  if (req.instances < 0 || req.instances > MAX_LRP_INSTANCES) problems.push(invalid("instances"));
  if (req.cpuWeight > 100) problems.push(invalid("cpu_weight"));
  if (Buffer.byteLength(req.annotation, "utf8") > MAX_ANNOTATION_BYTES) problems.push(invalid("annotation"));
  if (req.routes && !areValidRoutes(req.routes)) problems.push(invalid("routes"));
  req.egressRules.forEach((rule, i) => {
    const inner = validateRule(rule, `egress_rules[${i}]`);
    if (inner.length > 0) problems.push(invalid("egress_rules"), ...inner);
  });
  // Beyond 2015's request validation (see the top of this file).
  if (req.diskMb < 0) problems.push(invalid("disk_mb"));
  if (req.memoryMb < 0) problems.push(invalid("memory_mb"));
  if (req.env.some((v) => v.name === "")) problems.push("invalid field: name cannot be blank");
  if (req.ports.some((p) => p > MAX_PORT)) problems.push(invalid("ports"));
  return problems;
}

/** PUT /v1/desired_lrps/:guid: instances, annotation, routes, in 2015's order. */
export function validateDesiredLRPUpdateRequest(req: DesiredLRPUpdateRequest): string[] {
  const problems: string[] = [];
  if (req.instances !== undefined && (req.instances < 0 || req.instances > MAX_LRP_INSTANCES)) problems.push(invalid("instances"));
  if (req.annotation !== undefined && Buffer.byteLength(req.annotation, "utf8") > MAX_ANNOTATION_BYTES) problems.push(invalid("annotation"));
  if (req.routes && !areValidRoutes(req.routes)) problems.push(invalid("routes"));
  return problems;
}

/** A present setup or monitor: `{}` is an action of no type. */
function optionalAction(field: string, action: Action): string[] {
  if (action.action.case === undefined) return [invalid(field), INVALID_ACTION_TYPE];
  return actionProblems(field, action);
}

function actionProblems(field: string, action: Action): string[] {
  if (actionDepth(action) > MAX_ACTION_DEPTH) return [invalid(field)];
  const inner = validateAction(action);
  return inner.length > 0 ? [invalid(field), ...inner] : [];
}

/**
 * Every value JSON text (REST JSON always is; a gRPC client may send anything), and together at
 * most MAX_ROUTES_BYTES; no provider named `__proto__`. 2015 counted the raw bytes as sent; we count them compacted.
 */
export function areValidRoutes(routes: Routes): boolean {
  let total = 0;
  for (const [key, value] of Object.entries(routes.entries)) {
    // protobuf-es drops this key when it decodes a stored record: refused rather than lost.
    if (key === "__proto__") return false;
    total += Buffer.byteLength(value, "utf8");
    if (total > MAX_ROUTES_BYTES || !isJsonText(value)) return false;
  }
  return true;
}

function isJsonText(value: string): boolean {
  try {
    JSON.parse(value);
    return true;
  } catch {
    return false;
  }
}
