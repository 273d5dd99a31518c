import type { Action, EnvironmentVariable } from "../gen/diego/v1/actions_pb.js";
import type { SecurityGroupRule, TaskCreateRequest, TaskResponse } from "../gen/diego/v1/task_pb.js";
import { DiegoError } from "./errors.js";
import { exactInteger, writeJson, type JsonValue } from "./json-writer.js";
import { stateName } from "./task-state.js";
import { MAX_ACTION_DEPTH } from "./validate-task.js";
import { markEmptyPorts } from "./validate-rules.js";

// The REST JSON mapping: snake_case keys exactly as the seeds write them. Decoding checks every
// JSON type like Go's encoding/json did (a wrong type is InvalidJSON naming the field), but
// reports every wrong field at once rather than the first; unknown keys are ignored and null
// means "absent".

type Obj = Record<string, unknown>;

const invalidAction = "Invalid field: action";

/** The wrong JSON types found in one request body, each naming its field. */
class Problems {
  /** Kept to a few, so that a body of 100,000 wrong array entries gets a short answer. */
  static readonly SHOWN = 20;
  readonly shown: string[] = [];
  count = 0;

  add(problem: string): void {
    if (++this.count <= Problems.SHOWN) this.shown.push(problem);
  }

  toString(): string {
    const more = this.count - this.shown.length;
    return this.shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
  }
}

/** Reads typed fields of one JSON object; a wrong type is noted and read as absent. */
class Reader {
  constructor(
    private readonly obj: Obj,
    /** Where this object is in the request, e.g. `action.serial.actions[2]`. */
    readonly path: string,
    readonly problems: Problems,
  ) {}

  /** Notes a wrong type at `field` (a key of this object, or a full path) and returns `fallback`. */
  wrong<T>(field: string, expected: string, got: unknown, fallback: T): T {
    this.problems.add(wrongType(field, expected, got));
    return fallback;
  }

  child(obj: Obj, path: string): Reader {
    return new Reader(obj, path, this.problems);
  }

  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  private get(key: string): unknown {
    return Object.prototype.hasOwnProperty.call(this.obj, key) ? this.obj[key] : undefined;
  }

  string(key: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) return "";
    if (typeof v !== "string") return this.wrong(this.at(key), "a string", v, "");
    return v;
  }

  bool(key: string): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) return false;
    if (typeof v !== "boolean") return this.wrong(this.at(key), "a boolean", v, false);
    return v;
  }

  int(key: string, min: number, max: number, kind: string): number {
    const v = this.get(key);
    if (v === undefined || v === null) return 0;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) return this.wrong(this.at(key), kind, v, 0);
    return v;
  }

  /** An int64, as a JSON number or (as Go and protobuf JSON write large ones) a string of digits. */
  int64(key: string): bigint {
    const v = this.get(key);
    if (v === undefined || v === null) return 0n;
    const n = typeof v === "number" && Number.isInteger(v) ? BigInt(v) : typeof v === "string" && /^-?[0-9]+$/.test(v) ? BigInt(v) : undefined;
    if (n === undefined) return this.wrong(this.at(key), "an integer", v, 0n);
    // Beyond int64 it would wrap when stored (9999999999999999999 ns read back negative).
    if (n < INT64_MIN || n > INT64_MAX) {
      this.problems.add(`field '${this.at(key)}' is out of range: must be an integer from ${INT64_MIN} to ${INT64_MAX}, got ${describe(v)}`);
      return 0n;
    }
    return n;
  }

  object(key: string): Reader | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) return this.wrong(this.at(key), "an object", v, undefined);
    return this.child(v, this.at(key));
  }

  array(key: string): unknown[] {
    const v = this.get(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return this.wrong(this.at(key), "an array", v, []);
    return v;
  }

  strings(key: string): string[] {
    return this.array(key).map((v, i) => (typeof v === "string" ? v : this.wrong(`${this.at(key)}[${i}]`, "a string", v, "")));
  }

  /** Reads each object of an array with `read`, in order (so problems come in document order). */
  objects<T>(key: string, read: (r: Reader) => T): T[] {
    const out: T[] = [];
    this.array(key).forEach((v, i) => {
      if (isObject(v)) out.push(read(this.child(v, `${this.at(key)}[${i}]`)));
      else this.wrong(`${this.at(key)}[${i}]`, "an object", v, undefined);
    });
    return out;
  }

  raw(key: string): unknown {
    return this.get(key);
  }

  where(key: string): string {
    return this.at(key);
  }
}

const UINT32 = [0, 0xffffffff, "a non-negative integer"] as const;
const INT32 = [-0x80000000, 0x7fffffff, "an integer"] as const;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;


function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return `the number ${v}`;
  // Digits sent as a string are shown, up to a length: out-of-range answers show what came.
  if (typeof v === "string" && /^-?[0-9]+$/.test(v)) return `the string "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `a ${typeof v}`;
}

function wrongType(field: string, expected: string, got: unknown): string {
  return `field '${field}' must be ${expected}, got ${describe(got)}`;
}

/** Parses a request body; malformed JSON is InvalidJSON with the parser's reason. */
export function parseJsonBody(body: string): unknown {
  if (body.trim() === "") throw new DiegoError("InvalidJSON", "request body is empty");
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new DiegoError("InvalidJSON", `malformed JSON: ${(err as Error).message}`);
  }
}

export function decodeTaskCreateRequest(json: unknown): TaskCreateRequest {
  if (!isObject(json)) throw new DiegoError("InvalidJSON", `request body must be a JSON object, got ${describe(json)}`);
  const r = new Reader(json, "", new Problems());
  const request = readTaskCreateRequest(r);
  if (r.problems.count > 0) throw new DiegoError("InvalidJSON", r.problems.toString());
  return request;
}

function readTaskCreateRequest(r: Reader): TaskCreateRequest {
  // Messages are spelled out as plain objects rather than made by create(), which copies each
  // through reflection: on the create path that was a tenth of the receptor's CPU. Every field
  // is listed, so a field added to the schema is a type error here until it is decoded.
  return {
    $typeName: "diego.v1.TaskCreateRequest",
    taskGuid: r.string("task_guid"),
    domain: r.string("domain"),
    stack: r.string("stack"),
    rootFs: r.string("root_fs"),
    env: decodeEnv(r, "env"),
    cpuWeight: r.int("cpu_weight", ...UINT32),
    diskMb: r.int("disk_mb", ...INT32),
    memoryMb: r.int("memory_mb", ...INT32),
    privileged: r.bool("privileged"),
    action: decodeActionField(r, "action"),
    resultFile: r.string("result_file"),
    completionCallbackUrl: r.string("completion_callback_url"),
    logGuid: r.string("log_guid"),
    logSource: r.string("log_source"),
    annotation: r.string("annotation"),
    securityGroupRules: r.objects("security_group_rules", decodeRule),
  };
}

function decodeEnv(r: Reader, key: string): EnvironmentVariable[] {
  return r.objects(key, (e) => ({ $typeName: "diego.v1.EnvironmentVariable", name: e.string("name"), value: e.string("value") }));
}

function decodeRule(r: Reader): SecurityGroupRule {
  const range = r.object("port_range");
  const icmp = r.object("icmp_info");
  const rule: SecurityGroupRule = {
    $typeName: "diego.v1.SecurityGroupRule",
    protocol: r.string("protocol"),
    destination: r.string("destination"),
    portRange: range
      ? { $typeName: "diego.v1.PortRange", start: range.int("start", ...UINT32), end: range.int("end", ...UINT32) }
      : undefined,
    destinations: r.strings("destinations"),
    ports: r.array("ports").map((v, i) =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : r.wrong(`${r.where("ports")}[${i}]`, UINT32[2], v, 0),
    ),
    icmpInfo: icmp ? { $typeName: "diego.v1.IcmpInfo", type: icmp.int("type", ...INT32), code: icmp.int("code", ...INT32) } : undefined,
    log: r.bool("log"),
  };
  if (Array.isArray(r.raw("ports")) && rule.ports.length === 0) markEmptyPorts(rule);
  return rule;
}

const ACTION_KEYS = [
  "run",
  "download",
  "upload",
  "timeout",
  "emit_progress",
  "try",
  "parallel",
  "serial",
  "codependent",
] as const;

const action = (oneof: Action["action"]): Action => ({ $typeName: "diego.v1.Action", action: oneof });

/** `depth` is the nesting level of the action being read: 1 for the task's own action. */
function decodeActionField(r: Reader, key: string, depth = 1): Action | undefined {
  const v = r.raw(key);
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) return r.wrong(r.where(key), "an action object", v, undefined);
  return decodeAction(r.child(v, r.where(key)), v, depth);
}

function decodeActionList(r: Reader, key: string, depth: number): Action[] {
  return r.array(key).map((v, i) => {
    const where = `${r.where(key)}[${i}]`;
    // A null entry becomes an empty action so validation can name its index.
    if (v === null) return action({ case: undefined });
    if (!isObject(v)) return r.wrong(where, "an action object", v, action({ case: undefined }));
    return decodeAction(r.child(v, where), v, depth);
  });
}

function decodeAction(r: Reader, obj: Obj, depth: number): Action {
  // Stop before a hostile body (1 MiB of nesting) can exhaust the stack; validation would
  // reject anything this deep anyway.
  if (depth > MAX_ACTION_DEPTH) throw new DiegoError("InvalidTask", invalidAction);
  const present = ACTION_KEYS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (present.length > 1) {
    r.problems.add(`field '${r.path}' must have exactly one key naming its action type, got ${present.join(", ")}`);
    return action({ case: undefined });
  }
  const kind = present[0];
  const a = kind && r.object(kind);
  // Unknown keys only, or a type that is not an object: an empty action (validation or the
  // noted problem reports it).
  if (!kind || !a) return action({ case: undefined });
  const logSource = a.string("log_source");
  switch (kind) {
    case "run": {
      const limits = a.object("resource_limits");
      const nofile = limits?.raw("nofile");
      return action({
        case: "run",
        value: {
          $typeName: "diego.v1.RunAction",
          path: a.string("path"),
          args: a.strings("args"),
          dir: a.string("dir"),
          env: decodeEnv(a, "env"),
          resourceLimits: limits
            ? {
                $typeName: "diego.v1.ResourceLimits",
                nofile:
                  nofile === undefined || nofile === null
                    ? undefined
                    : BigInt(limits.int("nofile", 0, Number.MAX_SAFE_INTEGER, "an integer from 0 to 9007199254740991")),
              }
            : undefined,
          user: a.string("user"),
          logSource,
        },
      });
    }
    case "download":
      return action({
        case: "download",
        value: {
          $typeName: "diego.v1.DownloadAction",
          artifact: a.string("artifact"),
          from: a.string("from"),
          to: a.string("to"),
          cacheKey: a.string("cache_key"),
          user: a.string("user"),
          logSource,
        },
      });
    case "upload":
      return action({
        case: "upload",
        value: {
          $typeName: "diego.v1.UploadAction",
          artifact: a.string("artifact"),
          from: a.string("from"),
          to: a.string("to"),
          user: a.string("user"),
          logSource,
        },
      });
    case "timeout":
      return action({
        case: "timeout",
        value: {
          $typeName: "diego.v1.TimeoutAction",
          action: decodeActionField(a, "action", depth + 1),
          timeout: a.int64("timeout"),
          logSource,
        },
      });
    case "emit_progress":
      return action({
        case: "emitProgress",
        value: {
          $typeName: "diego.v1.EmitProgressAction",
          action: decodeActionField(a, "action", depth + 1),
          startMessage: a.string("start_message"),
          successMessage: a.string("success_message"),
          failureMessagePrefix: a.string("failure_message_prefix"),
          logSource,
        },
      });
    case "try":
      return action({
        case: "try",
        value: { $typeName: "diego.v1.TryAction", action: decodeActionField(a, "action", depth + 1), logSource },
      });
    case "parallel":
      return action({
        case: "parallel",
        value: { $typeName: "diego.v1.ParallelAction", actions: decodeActionList(a, "actions", depth + 1), logSource },
      });
    case "serial":
      return action({
        case: "serial",
        value: { $typeName: "diego.v1.SerialAction", actions: decodeActionList(a, "actions", depth + 1), logSource },
      });
    case "codependent":
      return action({
        case: "codependent",
        value: { $typeName: "diego.v1.CodependentAction", actions: decodeActionList(a, "actions", depth + 1), logSource },
      });
  }
}

// ---- encoding ----

const omitEmpty = (s: string): string | undefined => (s === "" ? undefined : s);

function envJson(env: EnvironmentVariable[]): JsonValue {
  return env.map((e) => ({ name: e.name, value: e.value }));
}

export function actionToJson(action: Action | undefined): JsonValue {
  if (!action) return null;
  const a = action.action;
  switch (a.case) {
    case "run": {
      const v = a.value;
      return {
        run: {
          path: v.path,
          args: v.args.length ? v.args : undefined,
          dir: omitEmpty(v.dir),
          env: v.env.length ? envJson(v.env) : undefined,
          resource_limits: v.resourceLimits
            ? { nofile: v.resourceLimits.nofile === undefined ? undefined : exactInteger(v.resourceLimits.nofile) }
            : undefined,
          user: v.user,
          log_source: omitEmpty(v.logSource),
        },
      };
    }
    case "download": {
      const v = a.value;
      return {
        download: {
          artifact: omitEmpty(v.artifact),
          from: v.from,
          to: v.to,
          cache_key: v.cacheKey,
          user: v.user,
          log_source: omitEmpty(v.logSource),
        },
      };
    }
    case "upload": {
      const v = a.value;
      return {
        upload: { artifact: omitEmpty(v.artifact), from: v.from, to: v.to, user: v.user, log_source: omitEmpty(v.logSource) },
      };
    }
    case "timeout":
      return {
        timeout: {
          action: a.value.action ? actionToJson(a.value.action) : undefined,
          timeout: exactInteger(a.value.timeout),
          log_source: omitEmpty(a.value.logSource),
        },
      };
    case "emitProgress": {
      const v = a.value;
      return {
        emit_progress: {
          action: v.action ? actionToJson(v.action) : undefined,
          start_message: v.startMessage,
          success_message: v.successMessage,
          failure_message_prefix: v.failureMessagePrefix,
          log_source: omitEmpty(v.logSource),
        },
      };
    }
    case "try":
      return { try: { action: a.value.action ? actionToJson(a.value.action) : undefined, log_source: omitEmpty(a.value.logSource) } };
    case "parallel":
    case "serial":
    case "codependent":
      return {
        [a.case]: {
          actions: a.value.actions.map((child) => actionToJson(child)),
          log_source: omitEmpty(a.value.logSource),
        },
      };
    default:
      return {};
  }
}

/** As 2015 wrote a rule: empty fields left out, `log` always written. */
function ruleJson(rule: SecurityGroupRule): JsonValue {
  return {
    protocol: omitEmpty(rule.protocol),
    destination: omitEmpty(rule.destination),
    destinations: rule.destinations.length ? rule.destinations : undefined,
    ports: rule.ports.length ? rule.ports : undefined,
    port_range: rule.portRange ? { start: rule.portRange.start, end: rule.portRange.end } : undefined,
    icmp_info: rule.icmpInfo ? { type: rule.icmpInfo.type, code: rule.icmpInfo.code } : undefined,
    log: rule.log,
  };
}

/** The TaskResponse as the seeds write it; empty env, annotation and rules are left out. */
export function taskResponseToJsonValue(t: TaskResponse): JsonValue {
  return {
    task_guid: t.taskGuid,
    domain: t.domain,
    stack: t.stack,
    root_fs: t.rootFs,
    env: t.env.length ? envJson(t.env) : undefined,
    cpu_weight: t.cpuWeight,
    disk_mb: t.diskMb,
    memory_mb: t.memoryMb,
    privileged: t.privileged,
    action: actionToJson(t.action),
    result_file: t.resultFile,
    completion_callback_url: t.completionCallbackUrl,
    log_guid: t.logGuid,
    log_source: t.logSource,
    annotation: omitEmpty(t.annotation),
    security_group_rules: t.securityGroupRules.length ? t.securityGroupRules.map(ruleJson) : undefined,
    created_at: exactInteger(t.createdAt),
    state: stateName(t.state),
    cell_id: t.cellId,
    failed: t.failed,
    failure_reason: t.failureReason,
    result: t.result,
  };
}

/** Characters JSON.stringify escapes in a string (surrogates only when unpaired; it decides). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON: JSON.stringify costs ~150 ns a call, a test and a template ~40. */
const str = (v: string): string => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

/**
 * The same JSON text as writeJson(taskResponseToJsonValue(t)), written field by field: 2 µs a
 * task instead of 5. Lists of cold tasks and every GET pay this per task.
 */
export function taskResponseToJson(t: TaskResponse): string {
  let s = `{"task_guid":${str(t.taskGuid)},"domain":${str(t.domain)},"stack":${str(t.stack)},"root_fs":${str(t.rootFs)}`;
  if (t.env.length) s += `,"env":${envText(t.env)}`;
  s += `,"cpu_weight":${t.cpuWeight},"disk_mb":${t.diskMb},"memory_mb":${t.memoryMb}`;
  s += `,"privileged":${t.privileged},"action":${actionText(t.action)}`;
  s += `,"result_file":${str(t.resultFile)},"completion_callback_url":${str(t.completionCallbackUrl)}`;
  s += `,"log_guid":${str(t.logGuid)},"log_source":${str(t.logSource)}`;
  if (t.annotation !== "") s += `,"annotation":${str(t.annotation)}`;
  if (t.securityGroupRules.length) s += `,"security_group_rules":${JSON.stringify(t.securityGroupRules.map(ruleJson))}`;
  s += `,"created_at":${t.createdAt},"state":"${stateName(t.state)}","cell_id":${str(t.cellId)}`;
  return `${s},"failed":${t.failed},"failure_reason":${str(t.failureReason)},"result":${str(t.result)}}`;
}

// The action as text, field by field, in actionToJson's order and with its omissions: through
// objects and writeJson it cost 3 µs a task, a fifth of the first list of 100,000 tasks.

const strings = (values: string[]): string => `[${values.map(str).join(",")}]`;
const envText = (env: EnvironmentVariable[]): string => `[${env.map((e) => `{"name":${str(e.name)},"value":${str(e.value)}}`).join(",")}]`;
const logSourceText = (logSource: string): string => (logSource === "" ? "" : `,"log_source":${str(logSource)}`);
/** `"action":…` followed by `after`, or nothing when there is no action. */
const nestedText = (action: Action | undefined, after: string): string => (action ? `"action":${actionText(action)}${after}` : "");

function actionText(action: Action | undefined): string {
  if (!action) return "null";
  const a = action.action;
  switch (a.case) {
    case "run": {
      const v = a.value;
      let s = `{"run":{"path":${str(v.path)}`;
      if (v.args.length) s += `,"args":${strings(v.args)}`;
      if (v.dir !== "") s += `,"dir":${str(v.dir)}`;
      if (v.env.length) s += `,"env":${envText(v.env)}`;
      const nofile = v.resourceLimits?.nofile;
      if (v.resourceLimits) s += `,"resource_limits":${nofile === undefined ? "{}" : `{"nofile":${nofile}}`}`;
      return `${s},"user":${str(v.user)}${logSourceText(v.logSource)}}}`;
    }
    case "download": {
      const v = a.value;
      const artifact = v.artifact === "" ? "" : `"artifact":${str(v.artifact)},`;
      return `{"download":{${artifact}"from":${str(v.from)},"to":${str(v.to)},"cache_key":${str(v.cacheKey)},"user":${str(v.user)}${logSourceText(v.logSource)}}}`;
    }
    case "upload": {
      const v = a.value;
      const artifact = v.artifact === "" ? "" : `"artifact":${str(v.artifact)},`;
      return `{"upload":{${artifact}"from":${str(v.from)},"to":${str(v.to)},"user":${str(v.user)}${logSourceText(v.logSource)}}}`;
    }
    case "timeout":
      return `{"timeout":{${nestedText(a.value.action, ",")}"timeout":${a.value.timeout}${logSourceText(a.value.logSource)}}}`;
    case "emitProgress": {
      const v = a.value;
      const messages = `"start_message":${str(v.startMessage)},"success_message":${str(v.successMessage)},"failure_message_prefix":${str(v.failureMessagePrefix)}`;
      return `{"emit_progress":{${nestedText(v.action, ",")}${messages}${logSourceText(v.logSource)}}}`;
    }
    case "try": {
      const logSource = logSourceText(a.value.logSource);
      // Without an action, log_source (if any) comes first and loses its leading comma.
      return `{"try":{${a.value.action ? nestedText(a.value.action, "") + logSource : logSource.slice(1)}}}`;
    }
    case "parallel":
    case "serial":
    case "codependent":
      return `{"${a.case}":{"actions":[${a.value.actions.map(actionText).join(",")}]${logSourceText(a.value.logSource)}}}`;
    default:
      return "{}";
  }
}
