import { ActionSchema } from "../gen/diego/v1/actions_pb.js";
import { DiegoError } from "./errors.js";
import { MAX_ACTION_DEPTH } from "./validate-task.js";

// Where the REST JSON differs from protobuf JSON (protobuf-es toJson with useProtoFieldName and
// alwaysEmitImplicit). Data, not code: compile-json.ts applies these to every message it maps.
//  1. 64-bit integers are bare JSON numbers, exact (created_at in ns is beyond a double).
//  2. Enum values are written without their prefix (PENDING, not TASK_STATE_PENDING); the zero
//     value and unknown numbers are written as "INVALID", as the seeds do.
//  3. Every field is written, even at its zero value, except those listed in omitWhenEmpty.
//  4. An absent message field is left out, except those listed in nullWhenAbsent (written null).
//  5. Decoding: a wrong JSON type is a problem naming the field (not a thrown first error);
//     null means absent; unknown keys are ignored; a null entry in a list of a one-of message
//     (an action) is an empty one, so validation can name its index.
//  6. Recursive messages have a nesting limit (depthLimits); a recursive message without one is
//     refused when its mapping is compiled.
//  7. Map fields (string keys) are JSON objects. A message listed in `wrappers` is written and
//     read as its only field's value (like protobuf's own wrapper types), so that a message field
//     can hold a map with presence (an update's `routes`: absent = unchanged, {} = none).
//  8. Map fields listed in `rawJsonValues` hold JSON text per key: written as is, read from any
//     JSON value (compacted), as Go's json.RawMessage did for 2015's routes.
//  9. List fields listed in `nullWhenEmpty` are written as null when empty (2015's ActualLRP ports).

export interface DepthLimit {
  max: number;
  error: () => Error;
}

/** Every action type: the message types of Action's one-of members. */
const actionTypes = ActionSchema.fields.flatMap((f) => (f.message ? [f.message.typeName] : []));

/** Fields written only when not empty ("", 0, false, []), as "Type.proto_field_name". */
export const omitWhenEmpty: ReadonlySet<string> = new Set([
  "diego.v1.TaskResponse.env",
  "diego.v1.TaskResponse.annotation",
  "diego.v1.TaskResponse.security_group_rules",
  "diego.v1.RunAction.args",
  "diego.v1.RunAction.dir",
  "diego.v1.RunAction.env",
  "diego.v1.DownloadAction.artifact",
  "diego.v1.UploadAction.artifact",
  // A rule as 2015 wrote it: empty fields left out, `log` always written.
  "diego.v1.SecurityGroupRule.protocol",
  "diego.v1.SecurityGroupRule.destination",
  "diego.v1.SecurityGroupRule.destinations",
  "diego.v1.SecurityGroupRule.ports",
  // LRPs (2015 receptor serialization/desired_lrps.go, actual_lrps.go).
  "diego.v1.DesiredLRPResponse.env",
  "diego.v1.DesiredLRPResponse.annotation",
  "diego.v1.DesiredLRPResponse.egress_rules",
  "diego.v1.ActualLRP.crash_reason",
  "diego.v1.ActualLRP.placement_error",
  "diego.v1.PortMapping.host_port",
  // Every action's log_source, including those of action types added later.
  ...actionTypes.map((t) => `${t}.log_source`),
]);

/** Message fields written as null when absent. */
export const nullWhenAbsent: ReadonlySet<string> = new Set([
  "diego.v1.TaskResponse.action",
  "diego.v1.DesiredLRPResponse.setup",
  "diego.v1.DesiredLRPResponse.monitor",
]);

/** List fields written as null when empty. */
export const nullWhenEmpty: ReadonlySet<string> = new Set(["diego.v1.ActualLRP.ports"]);

/** Messages of one field, written and read as that field's value. */
export const wrappers: ReadonlySet<string> = new Set(["diego.v1.Routes"]);

/** Map fields whose values are JSON text. */
export const rawJsonValues: ReadonlySet<string> = new Set(["diego.v1.Routes.entries"]);

/** The enum name written for the zero value and unknown numbers. */
export const invalidEnumName = "INVALID";

/** How deep a recursive message may nest in a request (the actions in an action tree). */
export const depthLimits: ReadonlyMap<string, DepthLimit> = new Map([
  ["diego.v1.Action", { max: MAX_ACTION_DEPTH, error: () => new DiegoError("InvalidTask", "Invalid field: action") }],
]);
