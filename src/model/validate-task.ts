import type { Action } from "../gen/diego/v1/actions_pb.js";
import type { TaskCreateRequest } from "../gen/diego/v1/task_pb.js";
import { actionChildren, actionDepth, visitAction, type ActionTable } from "./action-tree.js";
import { validateRule } from "./validate-rules.js";

// Validation of a TaskCreateRequest, as the contract's section 4 describes it. Like Diego's bbs,
// the model returns every problem at once; callers join them with ", ".

const GUID = /^[a-zA-Z0-9_-]+$/;
// A guid becomes a NATS KV key (subject) and, on cells, file and cgroup names (255-byte limit).
export const MAX_TASK_GUID_LENGTH = 255;
// Deeper nesting than this is surely a mistake, and it keeps every stored record well within
// protobuf-es's decode recursion limit (100 messages; each action level is two).
export const MAX_ACTION_DEPTH = 32;
const MAX_ANNOTATION_BYTES = 10 * 1024;
// Linux's default fs.nr_open: no process can have a higher RLIMIT_NOFILE, so runc would fail.
export const MAX_NOFILE = 1024 * 1024;

const invalid = (field: string): string => `Invalid field: ${field}`;

export function validateTaskCreateRequest(req: TaskCreateRequest): string[] {
  const problems: string[] = [];
  if (!isValidTaskGuid(req.taskGuid)) problems.push(invalid("task_guid"));
  if (req.domain === "") problems.push(invalid("domain"));
  if (req.stack === "") problems.push(invalid("stack"));
  if (req.rootFs !== "" && !isValidRootfs(req.rootFs)) problems.push(invalid("root_fs"));
  if (!req.action || req.action.action.case === undefined) {
    problems.push(invalid("action"));
  } else if (actionDepth(req.action) > MAX_ACTION_DEPTH) {
    problems.push(invalid("action"));
  } else {
    const inner = validateAction(req.action);
    if (inner.length > 0) problems.push(invalid("action"), ...inner);
  }
  if (req.cpuWeight > 100) problems.push(invalid("cpu_weight"));
  if (req.diskMb < 0) problems.push(invalid("disk_mb"));
  if (req.memoryMb < 0) problems.push(invalid("memory_mb"));
  if (Buffer.byteLength(req.annotation, "utf8") > MAX_ANNOTATION_BYTES) {
    problems.push(invalid("annotation"));
  }
  if (req.completionCallbackUrl !== "" && !isHttpUrl(req.completionCallbackUrl)) {
    problems.push(invalid("completion_callback_url"));
  }
  req.securityGroupRules.forEach((rule, i) => {
    const inner = validateRule(rule, `security_group_rules[${i}]`);
    if (inner.length > 0) problems.push(invalid("security_group_rules"), ...inner);
  });
  return problems;
}

/** Only a-z A-Z 0-9 _ -, 1 to 255 characters. */
export function isValidTaskGuid(guid: string): boolean {
  return guid.length <= MAX_TASK_GUID_LENGTH && GUID.test(guid);
}

/** Each action type's own rules; nested actions are checked alike for every type, below. */
const actionRules: ActionTable<string[]> = {
  run: (v) => {
    const nofile = v.resourceLimits?.nofile;
    return [...(v.path === "" ? [invalid("path")] : []), ...(nofile !== undefined && nofile > BigInt(MAX_NOFILE) ? [invalid("nofile")] : [])];
  },
  download: (v) => [...(isHttpUrl(v.from) ? [] : [invalid("from")]), ...(v.to === "" ? [invalid("to")] : [])],
  upload: (v) => [...(v.from === "" ? [invalid("from")] : []), ...(isHttpUrl(v.to) ? [] : [invalid("to")])],
  timeout: (v) => (v.timeout > 0n ? [] : [invalid("timeout")]),
  emitProgress: () => [],
  try: () => [],
  parallel: () => [],
  serial: () => [],
  codependent: () => [],
};

/** Problems of one action and everything nested in it (empty when valid). */
export function validateAction(action: Action): string[] {
  const { single, lists } = actionChildren(action);
  const nested = [...single.flatMap(validateChild), ...lists.flatMap(validateList)];
  return [...nested, ...visitAction(action, actionRules, () => [invalid("action")])];
}

function validateChild(child: Action | undefined): string[] {
  if (!child || child.action.case === undefined) return [invalid("action")];
  return validateAction(child);
}

function validateList(actions: Action[]): string[] {
  if (actions.length === 0) return [invalid("actions")];
  return actions.flatMap((child, i) =>
    child.action.case === undefined ? [invalid(`action at index ${i}`)] : validateAction(child),
  );
}

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
  } catch {
    return false;
  }
}

const DOCKER_PATH = /^\/[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

/** docker:///org/image[#tag], docker://host[:port]/org/image[#tag] or preloaded:<stack>. */
export function isValidRootfs(value: string): boolean {
  if (value.startsWith("preloaded:")) return /^preloaded:[^\s/:]+$/.test(value);
  if (!value.startsWith("docker://")) return false;
  const rest = value.slice("docker://".length);
  const hashAt = rest.indexOf("#");
  const tag = hashAt >= 0 ? rest.slice(hashAt + 1) : "latest";
  const hostAndPath = hashAt >= 0 ? rest.slice(0, hashAt) : rest;
  const slash = hostAndPath.indexOf("/");
  if (slash < 0) return false;
  const host = hostAndPath.slice(0, slash);
  const path = hostAndPath.slice(slash);
  if (host !== "" && !isRegistryHost(host)) return false;
  return DOCKER_PATH.test(path) && /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag);
}

/** host or host:port, the port 1..65535. */
function isRegistryHost(host: string): boolean {
  const m = /^[a-zA-Z0-9.-]+(?::([0-9]{1,5}))?$/.exec(host);
  return m !== null && (m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65535));
}
