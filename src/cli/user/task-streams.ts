import { parseDuration } from "../../duration/index.js";
import { onePositional, noPositionals, writeLine, type Context, type UserCommand } from "./context.js";
import { UsageError } from "./errors.js";
import { followStream } from "./follow-stream.js";
import { eventLine, formatElapsed, logLine, type LogLineView, type TaskView } from "./format.js";

// watch and logs: the API's Server-Sent Events, one line per message.

const note = (ctx: Context) => (text: string): void => writeLine(ctx.stderr, `diego: ${text}`);

/** `{"task":{...}}` → `{"event":"task_changed","task":{...}}`, keeping the API's digits. */
function eventJson(event: string, data: string): string {
  const trimmed = data.trim();
  if (trimmed.startsWith("{") && trimmed.length > 2) return `{"event":${JSON.stringify(event)},${trimmed.slice(1)}`;
  return JSON.stringify({ event, data });
}

export const watch: UserCommand = {
  synopsis: "diego task watch [--domain D]",
  help:
    "Prints each task change as it happens, one line each (created, changed, removed), until Ctrl-C. " +
    "Only changes from now on: use 'diego task list' for what exists. --json prints one JSON object a line: {\"event\":\"task_changed\",\"task\":{...}}.",
  options: { domain: { type: "string" } },
  flagHelp: [["--domain D", "only the changes of domain D's tasks"]],
  async run(ctx) {
    noPositionals(ctx, "task watch");
    const domain = ctx.values.domain as string | undefined;
    const path = domain ? `/v1/events?domain=${encodeURIComponent(domain)}` : "/v1/events";
    const opened = (): void => note(ctx)(`watching task changes at ${ctx.client.baseUrl}${path} (Ctrl-C to stop)`);
    for await (const m of followStream(ctx.client, path, ctx.signal, note(ctx), opened)) {
      const event = m.event ?? "message";
      // The stream also carries LRP events (desired_lrp_created, ...): not task changes.
      if (!event.startsWith("task_")) continue;
      if (ctx.json) {
        writeLine(ctx.stdout, eventJson(event, m.data));
        continue;
      }
      const task = (JSON.parse(m.data) as { task?: TaskView }).task;
      if (task) writeLine(ctx.stdout, eventLine(event, task, Date.now()));
    }
    return 0;
  },
};

const DEFAULT_IDLE = "2s";

export const logs: UserCommand = {
  synopsis: "diego task logs LOG_GUID [-f] [--idle DURATION]",
  help:
    "Prints the log lines of a log_guid (the task's log_guid field) as they are written. The system keeps no history: " +
    "lines written before the command started are not shown. With -f (--follow) it runs until Ctrl-C; without, it stops " +
    `once no line has come for --idle (default ${DEFAULT_IDLE}). --json prints the API's log objects, one a line.`,
  options: { follow: { type: "boolean", short: "f" }, idle: { type: "string" } },
  flagHelp: [
    ["-f, --follow", "keep printing until Ctrl-C"],
    ["--idle DURATION", `without -f: stop after this long without a line (default ${DEFAULT_IDLE})`],
  ],
  async run(ctx) {
    const logGuid = onePositional(ctx, "LOG_GUID", "task logs");
    const follow = ctx.values.follow === true;
    const idleMs = idleOf(ctx.values.idle, follow);
    // Without --follow, stop listening once the stream has been quiet for idleMs.
    const quiet = new AbortController();
    const signal = AbortSignal.any([ctx.signal, quiet.signal]);
    let timer: NodeJS.Timeout | undefined;
    const rearm = (): void => {
      if (follow) return;
      clearTimeout(timer);
      timer = setTimeout(() => quiet.abort(), idleMs);
    };
    try {
      const path = `/v1/logs/${encodeURIComponent(logGuid)}`;
      const opened = (): void => {
        note(ctx)(`reading the log lines of ${logGuid} at ${ctx.client.baseUrl}${path} ${follow ? "(Ctrl-C to stop)" : `until none comes for ${formatElapsed(idleMs)}`}`);
        rearm();
      };
      for await (const m of followStream(ctx.client, path, signal, note(ctx), opened)) {
        rearm();
        if (m.event !== "log") continue;
        writeLine(ctx.stdout, ctx.json ? m.data.trim() : logLine(JSON.parse(m.data) as LogLineView));
      }
    } finally {
      clearTimeout(timer);
    }
    return 0;
  },
};

function idleOf(raw: string | boolean | undefined, follow: boolean): number {
  if (raw === undefined) return parseDuration(DEFAULT_IDLE);
  if (follow) throw new UsageError("--idle is for reading without -f; with -f the command runs until Ctrl-C");
  try {
    const ms = parseDuration(String(raw));
    if (ms <= 0) throw new Error("must be more than 0");
    return ms;
  } catch (err) {
    throw new UsageError(`--idle: ${(err as Error).message}`);
  }
}
