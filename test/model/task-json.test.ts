import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActionSchema, type Action } from "../../src/gen/diego/v1/actions_pb.js";
import { TaskResponseSchema, TaskState, type TaskResponse } from "../../src/gen/diego/v1/task_pb.js";
import { writeJson } from "../../src/model/json-writer.js";
import { taskResponseToJsonValue } from "../fixtures/legacy-task-json.js";
import { taskResponseToJson } from "../../src/model/task-json.js";

// taskResponseToJson, generated from the descriptors, must write exactly what the hand-written
// mapping it replaced wrote (the JSON value, then writeJson), for any task.

const run = (path: string): Action => create(ActionSchema, { action: { case: "run", value: { path, args: ["-c", "echo \"hi\"\n"], user: "vcap" } } });

const everyAction = create(ActionSchema, {
  action: {
    case: "serial",
    value: {
      actions: [
        { action: { case: "run", value: { path: "/bin/sh", args: ["a"], dir: "/d", env: [{ name: "E", value: "v" }], resourceLimits: { nofile: 2n ** 40n }, logSource: "L" } } },
        { action: { case: "download", value: { artifact: "art", from: "http://x/y.tgz", to: "/tmp", cacheKey: "k", user: "root" } } },
        { action: { case: "upload", value: { from: "/out", to: "http://u/p", user: "vcap" } } },
        { action: { case: "timeout", value: { timeout: 123_456_789_012n, action: run("/t") } } },
        { action: { case: "emitProgress", value: { startMessage: "s", successMessage: "ok", failureMessagePrefix: "f", action: run("/e") } } },
        { action: { case: "try", value: { action: run("/try"), logSource: "T" } } },
        { action: { case: "parallel", value: { actions: [run("/p1"), run("/p2")] } } },
        { action: { case: "codependent", value: { actions: [] } } },
      ],
    },
  },
});

/** Every action field that may be left out, left out (and nested actions absent). */
const sparseActions = create(ActionSchema, {
  action: {
    case: "parallel",
    value: {
      logSource: "P",
      actions: [
        { action: { case: "run", value: { path: "/x", resourceLimits: {} } } },
        { action: { case: "download", value: { from: "http://x/y", to: "/y" } } },
        { action: { case: "upload", value: { from: "/a", to: "http://u", artifact: "", logSource: "U" } } },
        { action: { case: "timeout", value: { timeout: 1n } } },
        { action: { case: "emitProgress", value: { logSource: "E" } } },
        { action: { case: "try", value: {} } },
        { action: { case: "try", value: { logSource: "only" } } },
        { action: { case: undefined } },
        { action: { case: "serial", value: { actions: [{ action: { case: undefined } }] } } },
      ],
    },
  },
});

const nasty = 'q " b \\ nl \n ✓ \u0000 \ud800';
const escapedActions = create(ActionSchema, {
  action: {
    case: "serial",
    value: {
      logSource: nasty,
      actions: [
        { action: { case: "run", value: { path: nasty, args: [nasty, ""], dir: nasty, env: [{ name: nasty, value: nasty }], user: nasty, logSource: nasty } } },
        { action: { case: "download", value: { artifact: nasty, from: nasty, to: nasty, cacheKey: nasty, user: nasty, logSource: nasty } } },
        { action: { case: "emitProgress", value: { startMessage: nasty, successMessage: nasty, failureMessagePrefix: nasty, action: run(nasty) } } },
        { action: { case: "try", value: { action: run("/t"), logSource: nasty } } },
      ],
    },
  },
});

function task(over: MessageInitShape<typeof TaskResponseSchema>): TaskResponse {
  return create(TaskResponseSchema, {
    taskGuid: "guid-1",
    domain: "d",
    stack: "lucid64",
    action: run("/bin/true"),
    createdAt: 1_795_456_641_098_704_719n,
    ...over,
  });
}

const cases: Array<[string, TaskResponse]> = [
  ["a minimal task", task({})],
  ["no action at all", task({ action: undefined })],
  ["every action type, nested", task({ action: everyAction })],
  [
    "every top-level field set",
    task({
      rootFs: "docker:///busybox#1",
      env: [{ name: "A", value: "b" }],
      cpuWeight: 100,
      diskMb: 2 ** 31 - 1,
      memoryMb: 128,
      privileged: true,
      resultFile: "/tmp/result",
      completionCallbackUrl: "http://127.0.0.1:1/cb",
      logGuid: "log",
      logSource: "SRC",
      annotation: "note",
      securityGroupRules: [{ protocol: "tcp", destination: "0.0.0.0/0", portRange: { start: 1, end: 65535 } }],
      state: TaskState.COMPLETED,
      cellId: "cell-1",
      failed: true,
      failureReason: "Exited with status 1",
      result: "ENV_VALUE_A\n",
    }),
  ],
  ["strings that need escaping", task({ domain: 'quote " back \\ nul \u0000 tab \t', annotation: "héllo ✓ 𝄞 \u2028", result: "\u0000deadbeef:5", cellId: "lone \ud800 surrogate", failureReason: "\u007f del" })],
  ["extreme timestamps", task({ createdAt: -(2n ** 63n) })],
  ["actions missing their optional parts", task({ action: sparseActions })],
  ["actions with escapes in every string", task({ action: escapedActions })],
  ["a zero timestamp and RUNNING", task({ createdAt: 0n, state: TaskState.RUNNING })],
];

describe("a task's REST JSON", () => {
  for (const [name, t] of cases) {
    it(`is written field by field exactly as the general writer writes it: ${name}`, () => {
      const expected = writeJson(taskResponseToJsonValue(t));
      expect(taskResponseToJson(t)).toBe(expected);
      expect(() => JSON.parse(expected)).not.toThrow();
    });
  }
});
