import type { EventSourceMessage } from "eventsource-parser";
import { noPositionals, writeLine, type Context, type UserCommand } from "./context.js";
import { ApiError, EXIT, StreamEndedError } from "./errors.js";
import { followStream } from "./follow-stream.js";
import { formatElapsed, type TaskView } from "./format.js";
import { startProgress, type Progress } from "./spinner.js";
import { taskPath } from "./task-crud.js";
import { readTaskFile } from "./task-file.js";

// create, then wait for COMPLETED on the event stream, which is opened before the create so that
// no change is missed.

const done = (t: TaskView): boolean => t.state === "COMPLETED" || t.state === "RESOLVING";

export const run: UserCommand = {
  synopsis: "diego task run -f FILE|- [--rm]",
  help:
    "Creates a task (like 'create') and waits for it to complete, with a spinner and the elapsed time when stderr is a terminal. " +
    "Prints the outcome and the task's result; --json prints the completed TaskResponse. --rm deletes the task once it completed. " +
    `Exit status: ${EXIT.ok} the task succeeded, ${EXIT.taskFailed} it failed (the failure_reason is printed), ` +
    `${EXIT.error} the API refused it or could not be reached, ${EXIT.usage} a usage error, ${EXIT.interrupted} interrupted while waiting (the task goes on).`,
  options: { file: { type: "string", short: "f" }, rm: { type: "boolean" } },
  flagHelp: [
    ["-f, --file FILE", "the task as JSON; - reads stdin"],
    ["--rm", "delete the task once it completed"],
  ],
  async run(ctx) {
    noPositionals(ctx, "task run");
    const file = await readTaskFile(ctx.values.file, ctx.stdin, "task run");
    const startedAt = Date.now();
    const stop = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stop.signal]);
    // The first next() opens the stream; the create waits until the API accepted it.
    let opened!: () => void;
    const isOpen = new Promise<void>((r) => (opened = r));
    const events = followStream(ctx.client, eventsPath(file.domain), signal, (text) => writeLine(ctx.stderr, `diego: ${text}`), opened)[
      Symbol.asyncIterator
    ]();
    const first = events.next();
    first.catch(() => undefined); // awaited below; its rejection is handled there
    const progress = startProgress(ctx.stderr, startedAt, `creating ${file.guid ?? "task"}`);
    try {
      await Promise.race([isOpen, first.then(() => undefined)]);
      if (ctx.signal.aborted) return EXIT.interrupted;
      await ctx.client.request("POST", "/v1/tasks", file.body);
      const guid = file.guid!;
      progress.update(`${guid} PENDING`);
      const final = await waitCompleted(ctx, guid, first, events, progress);
      progress.stop();
      if (final === undefined) {
        writeLine(ctx.stderr, `diego: stopped waiting; task ${guid} goes on (see 'diego task get ${guid}', stop it with 'diego task cancel ${guid}')`);
        return EXIT.interrupted;
      }
      report(ctx, final, Date.now() - startedAt);
      if (ctx.values.rm === true) await ctx.client.request("DELETE", taskPath(guid));
      return final.task.failed ? EXIT.taskFailed : EXIT.ok;
    } finally {
      progress.stop();
      stop.abort();
    }
  },
};

interface Final {
  task: TaskView;
  /** The TaskResponse as the API wrote it. */
  raw: string;
}

const eventsPath = (domain: string | undefined): string => (domain ? `/v1/events?domain=${encodeURIComponent(domain)}` : "/v1/events");

async function waitCompleted(
  ctx: Context,
  guid: string,
  first: Promise<IteratorResult<EventSourceMessage>>,
  events: AsyncIterator<EventSourceMessage>,
  progress: Progress,
): Promise<Final | undefined> {
  // Done already (a fast task, or a receptor whose stream lagged)?
  const now = await ctx.client.request("GET", taskPath(guid)).catch((err: unknown) => {
    // Completed and resolved (a callback) already: its COMPLETED event is in the stream.
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  });
  if (now !== undefined) {
    const current = JSON.parse(now) as TaskView;
    if (done(current)) return { task: current, raw: now };
    progress.update(label(current));
  }
  for (let step = await first; !step.done; step = await events.next()) {
    const m = step.value;
    const raw = /^\{"task":([\s\S]*)\}$/.exec(m.data.trim())?.[1];
    if (!raw) continue;
    const task = JSON.parse(raw) as TaskView;
    if (task.task_guid !== guid) continue;
    if (done(task)) return { task, raw };
    if (m.event === "task_removed") throw new ApiError("TaskNotFound", `task ${guid} was removed before it completed`, 404);
    progress.update(label(task));
  }
  if (ctx.signal.aborted) return undefined;
  throw new StreamEndedError(`the event stream ended before task ${guid} completed`);
}

const label = (t: TaskView): string => `${t.task_guid} ${t.state}${t.cell_id ? ` on ${t.cell_id}` : ""}`;

function report(ctx: Context, final: Final, elapsedMs: number): void {
  if (ctx.json) {
    writeLine(ctx.stdout, final.raw);
    return;
  }
  const t = final.task;
  const took = formatElapsed(elapsedMs);
  writeLine(ctx.stdout, t.failed ? `task ${t.task_guid} failed after ${took}: ${t.failure_reason || "(no reason given)"}` : `task ${t.task_guid} succeeded after ${took}`);
  if (t.result) writeLine(ctx.stdout, `result:\n${t.result}`);
}
