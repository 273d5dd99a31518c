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
  // Every action's log_source, including those of action types added later.
  ...actionTypes.map((t) => `${t}.log_source`),
]);

/** Message fields written as null when absent. */
export const nullWhenAbsent: ReadonlySet<string> = new Set(["diego.v1.TaskResponse.action"]);

/** The enum name written for the zero value and unknown numbers. */
export const invalidEnumName = "INVALID";

/** How deep a recursive message may nest in a request (the actions in an action tree). */
export const depthLimits: ReadonlyMap<string, DepthLimit> = new Map([
  ["diego.v1.Action", { max: MAX_ACTION_DEPTH, error: () => new DiegoError("InvalidTask", "Invalid field: action") }],
]);
