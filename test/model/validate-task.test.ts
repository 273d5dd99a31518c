import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { ActionSchema } from "../../src/gen/diego/v1/actions_pb.js";
import { TaskCreateRequestSchema } from "../../src/gen/diego/v1/task_pb.js";
import { validateTaskCreateRequest } from "../../src/model/index.js";

// Every rule of the contract's section 4, one row each: the request differs from a valid one in
// one place, and the answer is the exact list of problems (joined by ", " in the 400 InvalidTask).

type ActionInit = MessageInitShape<typeof ActionSchema>;
type RequestInit = MessageInitShape<typeof TaskCreateRequestSchema>;

const run = (path = "/bin/true", nofile?: bigint): ActionInit => ({ action: { case: "run", value: { path, resourceLimits: nofile === undefined ? undefined : { nofile } } } });
const download = (from: string, to: string): ActionInit => ({ action: { case: "download", value: { from, to } } });
const upload = (from: string, to: string): ActionInit => ({ action: { case: "upload", value: { from, to } } });
const timeout = (ns: bigint, action?: ActionInit): ActionInit => ({ action: { case: "timeout", value: { timeout: ns, action } } });
const tryAction = (action?: ActionInit): ActionInit => ({ action: { case: "try", value: { action } } });
const emit = (action?: ActionInit): ActionInit => ({ action: { case: "emitProgress", value: { action } } });
const serial = (...actions: ActionInit[]): ActionInit => ({ action: { case: "serial", value: { actions } } });
const parallel = (...actions: ActionInit[]): ActionInit => ({ action: { case: "parallel", value: { actions } } });
const codependent = (...actions: ActionInit[]): ActionInit => ({ action: { case: "codependent", value: { actions } } });
/** `levels` actions deep: tries around one run. */
const nested = (levels: number): ActionInit => (levels === 1 ? run() : tryAction(nested(levels - 1)));

const tcp = (destination: string, start = 80, end = 80) => ({ protocol: "tcp", destination, portRange: { start, end } });

const valid: RequestInit = { taskGuid: "task-1", domain: "d", stack: "lucid64", action: run() };
const problems = (change: RequestInit): string[] => validateTaskCreateRequest(create(TaskCreateRequestSchema, { ...valid, ...change } as RequestInit));

const F = (field: string): string => `Invalid field: ${field}`;
const ACTION = F("action");

const cases: Array<[string, RequestInit, string[]]> = [
  ["a valid request", {}, []],
  // task_guid: a-z A-Z 0-9 _ -, 1 to 255 characters.
  ["task_guid empty", { taskGuid: "" }, [F("task_guid")]],
  ["task_guid with a dot", { taskGuid: "a.b" }, [F("task_guid")]],
  ["task_guid with a slash", { taskGuid: "a/b" }, [F("task_guid")]],
  ["task_guid with a space", { taskGuid: "a b" }, [F("task_guid")]],
  ["task_guid of every allowed character", { taskGuid: "aZ09_-" }, []],
  ["task_guid of 255 characters", { taskGuid: "x".repeat(255) }, []],
  ["task_guid of 256 characters", { taskGuid: "x".repeat(256) }, [F("task_guid")]],
  ["domain empty", { domain: "" }, [F("domain")]],
  ["stack empty", { stack: "" }, [F("stack")]],
  // root_fs: optional; docker:///org/image[#tag], docker://host[:port]/org/image[#tag], preloaded:<stack>.
  ["root_fs preloaded", { rootFs: "preloaded:lucid64" }, []],
  ["root_fs preloaded without a stack", { rootFs: "preloaded:" }, [F("root_fs")]],
  ["root_fs preloaded with a slash", { rootFs: "preloaded:a/b" }, [F("root_fs")]],
  ["root_fs docker, default registry", { rootFs: "docker:///cloudfoundry/grace" }, []],
  ["root_fs docker with a tag", { rootFs: "docker:///cloudfoundry/grace#v1.0" }, []],
  ["root_fs docker with a registry and port", { rootFs: "docker://registry.example:5000/org/img#tag" }, []],
  ["root_fs docker with a port over 65535", { rootFs: "docker://registry.example:70000/org/img" }, [F("root_fs")]],
  ["root_fs docker with port 0", { rootFs: "docker://registry.example:0/org/img" }, [F("root_fs")]],
  ["root_fs docker with an empty port", { rootFs: "docker://registry.example:/org/img" }, [F("root_fs")]],
  ["root_fs docker without a path", { rootFs: "docker://" }, [F("root_fs")]],
  ["root_fs docker with capitals in the path", { rootFs: "docker:///Org/Img" }, [F("root_fs")]],
  ["root_fs docker with an empty tag", { rootFs: "docker:///org/img#" }, [F("root_fs")]],
  ["root_fs docker with a space in the tag", { rootFs: "docker:///org/img#a b" }, [F("root_fs")]],
  ["root_fs of another scheme", { rootFs: "some:rootfs" }, [F("root_fs")]],
  ["root_fs without a scheme", { rootFs: "invalid-absolute-url" }, [F("root_fs")]],
  // action: required, validated all the way down; the nested problems follow "action".
  ["action absent", { action: undefined }, [ACTION]],
  ["action without a type", { action: {} }, [ACTION]],
  ["run without a path", { action: run("") }, [ACTION, F("path")]],
  ["run with nofile at the kernel's limit", { action: run("/bin/true", 1024n * 1024n) }, []],
  ["run with nofile over it", { action: run("/bin/true", 1024n * 1024n + 1n) }, [ACTION, F("nofile")]],
  ["download", { action: download("http://127.0.0.1:1/a.tgz", "/tmp") }, []],
  ["download from a non-http URL", { action: download("ftp://127.0.0.1/a.tgz", "/tmp") }, [ACTION, F("from")]],
  ["download to nowhere", { action: download("https://127.0.0.1/a.tgz", "") }, [ACTION, F("to")]],
  ["download with neither", { action: download("", "") }, [ACTION, F("from"), F("to")]],
  ["upload", { action: upload("/tmp/out", "http://127.0.0.1:1/up") }, []],
  ["upload from nowhere", { action: upload("", "http://127.0.0.1:1/up") }, [ACTION, F("from")]],
  ["upload to a non-URL", { action: upload("/tmp/out", "not a url") }, [ACTION, F("to")]],
  ["timeout", { action: timeout(1_000_000_000n, run()) }, []],
  ["timeout of zero", { action: timeout(0n, run()) }, [ACTION, F("timeout")]],
  ["timeout negative", { action: timeout(-1n, run()) }, [ACTION, F("timeout")]],
  ["timeout without an action", { action: timeout(1n) }, [ACTION, ACTION]],
  ["try without an action", { action: tryAction() }, [ACTION, ACTION]],
  ["emit_progress without an action", { action: emit() }, [ACTION, ACTION]],
  ["emit_progress around an invalid run", { action: emit(run("")) }, [ACTION, F("path")]],
  ["serial without actions", { action: serial() }, [ACTION, F("actions")]],
  ["parallel without actions", { action: parallel() }, [ACTION, F("actions")]],
  ["codependent without actions", { action: codependent() }, [ACTION, F("actions")]],
  ["serial with an empty entry", { action: serial(run(), {}) }, [ACTION, F("action at index 1")]],
  ["parallel with two invalid entries", { action: parallel(run(""), download("", "/tmp")) }, [ACTION, F("path"), F("from")]],
  ["32 levels of actions", { action: nested(32) }, []],
  ["33 levels of actions", { action: nested(33) }, [ACTION]],
  // Resources.
  ["cpu_weight 100", { cpuWeight: 100 }, []],
  ["cpu_weight 101", { cpuWeight: 101 }, [F("cpu_weight")]],
  ["disk_mb 0 (no limit)", { diskMb: 0 }, []],
  ["disk_mb negative", { diskMb: -1 }, [F("disk_mb")]],
  ["memory_mb negative", { memoryMb: -1 }, [F("memory_mb")]],
  // annotation: at most 10 KiB, counted in bytes.
  ["annotation of 10240 bytes", { annotation: "a".repeat(10240) }, []],
  ["annotation of 10241 bytes", { annotation: "a".repeat(10241) }, [F("annotation")]],
  ["annotation of 5121 two-byte characters", { annotation: "é".repeat(5121) }, [F("annotation")]],
  // completion_callback_url: absolute http or https.
  ["callback http", { completionCallbackUrl: "http://127.0.0.1:8080/done" }, []],
  ["callback https", { completionCallbackUrl: "https://example.test/done" }, []],
  ["callback of another scheme", { completionCallbackUrl: "ftp://127.0.0.1/done" }, [F("completion_callback_url")]],
  ["callback not a URL", { completionCallbackUrl: "/done" }, [F("completion_callback_url")]],
  // security_group_rules: each rule checked (docs/networking.md has the details).
  ["a tcp rule", { securityGroupRules: [tcp("10.0.0.0/8")] }, []],
  ["protocol in capitals", { securityGroupRules: [{ ...tcp("10.0.0.1"), protocol: "TCP" }] }, []],
  ["an unknown protocol", { securityGroupRules: [{ protocol: "sctp", destination: "10.0.0.1" }] }, [F("security_group_rules"), F("security_group_rules[0].protocol")]],
  ["tcp without ports", { securityGroupRules: [{ protocol: "tcp", destination: "10.0.0.1" }] }, [F("security_group_rules"), "Missing required field: security_group_rules[0].ports or port_range"]],
  ["a port range backwards", { securityGroupRules: [tcp("10.0.0.1", 90, 80)] }, [F("security_group_rules"), F("security_group_rules[0].port_range")]],
  ["the second rule invalid", { securityGroupRules: [tcp("10.0.0.1"), tcp("10.0.0.1", 0, 80)] }, [F("security_group_rules"), F("security_group_rules[1].port_range")]],
  // Every problem at once, in the contract's order.
  ["an empty request", { taskGuid: "", domain: "", stack: "", action: undefined }, [F("task_guid"), F("domain"), F("stack"), ACTION]],
  [
    "many at once",
    { taskGuid: "a b", rootFs: "x", action: run(""), cpuWeight: 500, memoryMb: -5, completionCallbackUrl: "nope" },
    [F("task_guid"), F("root_fs"), ACTION, F("path"), F("cpu_weight"), F("memory_mb"), F("completion_callback_url")],
  ],
];

describe("validateTaskCreateRequest", () => {
  it.each(cases)("%s", (_name, change, expected) => {
    expect(problems(change)).toEqual(expected);
  });
});
