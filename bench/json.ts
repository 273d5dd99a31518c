// The REST JSON writer benchmark (`npm run bench:json`): the generated writer (compile-json.ts)
// against the hand-written one it replaced (test/fixtures/legacy-task-json.ts), in one run, in
// interleaved rounds so that load from elsewhere on the machine falls on both alike. Each task
// is a distinct object written once per round (a cold task: not in the index's JSON cache), as
// a list of 100,000 tasks writes them. Prints the median µs a task of each, and checks that both
// write the same text.
//
//   tsx bench/json.ts [--tasks 100000] [--rounds 7]

import { create } from "@bufbuild/protobuf";
import { TaskResponseSchema, TaskState, type TaskResponse } from "../src/gen/diego/v1/task_pb.js";
import { taskResponseToJson } from "../src/model/task-json.js";
import { decodeTaskCreateRequest as legacyDecode, taskResponseToJson as legacyWrite } from "../test/fixtures/legacy-task-json.js";
import { decodeTaskCreateRequest } from "../src/model/task-json.js";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const TASKS = arg("tasks", 100_000);
const ROUNDS = arg("rounds", 7);

/** A task as a typical client submits it: a download then a run, with env and a callback. */
function task(i: number): TaskResponse {
  return create(TaskResponseSchema, {
    taskGuid: `task-${i}-5b0e9a3c`,
    domain: "bench",
    stack: "lucid64",
    rootFs: "docker:///busybox#1.36",
    env: [{ name: "APP", value: `app-${i}` }],
    cpuWeight: 50,
    diskMb: 1024,
    memoryMb: 256,
    action: {
      action: {
        case: "serial",
        value: {
          actions: [
            { action: { case: "download", value: { from: "http://127.0.0.1:8080/app.tgz", to: "/app", cacheKey: "app", user: "vcap" } } },
            { action: { case: "run", value: { path: "/bin/sh", args: ["-c", `echo ${i} > /tmp/result`], user: "vcap", logSource: "APP" } } },
          ],
        },
      },
    },
    resultFile: "/tmp/result",
    completionCallbackUrl: "http://127.0.0.1:9000/done",
    logGuid: `log-${i}`,
    logSource: "TASK",
    createdAt: 1_795_456_641_098_704_719n + BigInt(i),
    state: TaskState.RUNNING,
    cellId: "cell-1",
  });
}

function timePerTask(write: (t: TaskResponse) => string, tasks: TaskResponse[]): number {
  let bytes = 0;
  const start = process.hrtime.bigint();
  for (const t of tasks) bytes += write(t).length;
  const ns = Number(process.hrtime.bigint() - start);
  if (bytes === 0) throw new Error("nothing written");
  return ns / tasks.length / 1000;
}

function timePerBody(decode: (j: unknown) => unknown, bodies: unknown[]): number {
  const start = process.hrtime.bigint();
  for (const b of bodies) decode(b);
  return Number(process.hrtime.bigint() - start) / bodies.length / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const tasks = Array.from({ length: TASKS }, (_, i) => task(i));
for (const t of tasks.slice(0, 1000)) {
  if (taskResponseToJson(t) !== legacyWrite(t)) throw new Error(`the writers differ for ${t.taskGuid}`);
}
const bodies = tasks.slice(0, 20_000).map((t) => JSON.parse(legacyWrite(t)) as unknown);

const results = { generated: [] as number[], handWritten: [] as number[], readGenerated: [] as number[], readHandWritten: [] as number[] };
for (let round = 0; round < ROUNDS; round++) {
  // Fresh copies each round, so no writer meets objects the other has warmed.
  const a = tasks.map((t) => ({ ...t }));
  const b = tasks.map((t) => ({ ...t }));
  if (round % 2 === 0) {
    results.generated.push(timePerTask(taskResponseToJson, a));
    results.handWritten.push(timePerTask(legacyWrite, b));
  } else {
    results.handWritten.push(timePerTask(legacyWrite, b));
    results.generated.push(timePerTask(taskResponseToJson, a));
  }
  results.readGenerated.push(timePerBody(decodeTaskCreateRequest, bodies));
  results.readHandWritten.push(timePerBody(legacyDecode, bodies));
}

const fmt = (xs: number[]): string => `${median(xs).toFixed(2)} µs (rounds: ${xs.map((x) => x.toFixed(2)).join(", ")})`;
console.log(`cold task JSON, ${TASKS} tasks, median of ${ROUNDS} rounds`);
console.log(`  generated (compile-json.ts):      ${fmt(results.generated)}`);
console.log(`  hand-written (before, reference): ${fmt(results.handWritten)}`);
console.log(`  list of ${TASKS}, generated: ${((median(results.generated) * TASKS) / 1000).toFixed(0)} ms; hand-written: ${((median(results.handWritten) * TASKS) / 1000).toFixed(0)} ms`);
console.log(`request body decode (create request from parsed JSON), 20000 bodies`);
console.log(`  generated:    ${fmt(results.readGenerated)}`);
console.log(`  hand-written: ${fmt(results.readHandWritten)}`);
