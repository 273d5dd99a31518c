import { create, fromBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { LogMessageSchema, type LogMessage } from "../../gen/diego/v1/internal_pb.js";
import { TaskResponseSchema, type TaskResponse } from "../../gen/diego/v1/task_pb.js";
import { subjects, subjectToken } from "../../nats/index.js";
import type { TaskIndex } from "../../store/index.js";
import { streamTooSlow } from "./errors.js";

// Event fan-out: each stream (a watch of task changes, a task's log lines) gets its own bounded
// backlog. A reader that falls further behind than that gets StreamTooSlow, so a stopped reader
// cannot make the receptor buffer without end.

export type TaskEventKind = "created" | "changed" | "removed";

export interface TaskEvent {
  kind: TaskEventKind;
  task: TaskResponse;
}

/** Something that pushes events until the returned unsubscribe is called. */
export type EventSource<T> = (push: (event: T) => void) => () => void;

/** A source's events, each made into another (to fan several kinds into one stream). */
export const mapSource =
  <T, U>(source: EventSource<T>, f: (event: T) => U): EventSource<U> =>
  (push) =>
    source((e) => push(f(e)));

/** The task index's changes (of one domain; "" all) as events. */
export const taskEventSource =
  (index: TaskIndex, domain: string): EventSource<TaskEvent> =>
  (push) =>
    index.subscribe((_guid, before, after) => {
      const entry = after ?? before;
      // The domain is known without decoding the record: watchers of other domains skip it.
      if (!entry || (domain && entry.domain !== domain)) return;
      const task = entry.record.task;
      if (!task) return;
      const kind: TaskEventKind = !before ? "created" : !after ? "removed" : "changed";
      push({ kind, task: create(TaskResponseSchema, task) });
    });

/** The events of every source in one iterator, in the order they happen, until the signal aborts. */
export async function* fanIn<T>(sources: EventSource<T>[], signal: AbortSignal, backlog: number): AsyncIterable<T> {
  const queue = createQueue<T>(signal, backlog);
  const unsubscribes = sources.map((source) => source((e) => queue.push(e)));
  try {
    yield* queue.iterate();
  } finally {
    for (const u of unsubscribes) u();
  }
}

/** Pushes index changes into an async iterator until the signal aborts. */
export const watchTasks = (index: TaskIndex, domain: string, signal: AbortSignal, backlog: number): AsyncIterable<TaskEvent> =>
  fanIn([taskEventSource(index, domain)], signal, backlog);

/** A log_guid's lines as cells publish them, until the signal aborts. */
export async function* streamLogs(nc: NatsConnection, logGuid: string, signal: AbortSignal, backlog: number): AsyncIterable<LogMessage> {
  const sub = nc.subscribe(subjects.logs(subjectToken(logGuid)));
  const onAbort = (): void => sub.unsubscribe();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const m of sub) {
      if (sub.getPending() > backlog) throw streamTooSlow(backlog);
      try {
        yield fromBinary(LogMessageSchema, m.data);
      } catch {
        // A malformed message from outside the system: skip it.
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    sub.unsubscribe();
  }
}

/** Items waiting for a reader; more than `backlog` of them ends the iteration with StreamTooSlow. */
function createQueue<T>(signal: AbortSignal, backlog: number): { push(v: T): void; iterate(): AsyncIterable<T> } {
  let items: T[] = [];
  let overflowed = false;
  let wake: (() => void) | undefined;
  signal.addEventListener("abort", () => wake?.(), { once: true });
  return {
    push(v) {
      if (overflowed) return;
      if (items.length >= backlog) {
        overflowed = true;
        items = [];
      } else {
        items.push(v);
      }
      wake?.();
    },
    async *iterate() {
      while (!signal.aborted) {
        if (overflowed) throw streamTooSlow(backlog);
        const item = items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}
