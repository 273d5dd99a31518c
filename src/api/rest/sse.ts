import type { WatchLRPsResponse } from "../../gen/diego/v1/lrp_pb.js";
import { lrpEventToSse, taskResponseToJson, writeJson } from "../../model/index.js";
import { DiegoError } from "../core/errors.js";
import { fanIn, mapSource, type EventSource, type TaskEvent } from "../core/events.js";
import type { LrpApi } from "../core/lrp-api.js";
import type { TaskApi } from "../core/task-api.js";
import type { Req, Res } from "../http/types.js";
import { errorEventData } from "./errors.js";
import { drained, write } from "./reply.js";

// The REST event streams, as Server-Sent Events: task changes (/v1/events) and a task's log
// lines (/v1/logs/:log_guid).

function startSse(req: Req, res: Res): AbortController {
  const abort = new AbortController();
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-store, must-revalidate",
  });
  write(res, ": connected\n\n");
  req.on("close", () => abort.abort());
  res.on("close", () => abort.abort());
  return abort;
}

/**
 * Sends a stream's messages as Server-Sent Events until the client goes. While the client's
 * connection is full it waits, so that what it has not read stays in the API's bounded backlog
 * (which ends the stream with an API error, sent as an `error` event) rather than in Node's
 * buffers. A comment line now and then keeps proxies from taking the stream for dead.
 */
async function sendStream<T>(
  req: Req,
  res: Res,
  keepAliveMs: number,
  messages: (signal: AbortSignal) => AsyncIterable<T>,
  frame: (m: T) => string,
): Promise<void> {
  const abort = startSse(req, res);
  let id = 0;
  let full = false;
  // Not while the connection is full: the client is there, only slow.
  const keepAlive = setInterval(() => {
    if (!full) write(res, ": keepalive\n\n");
  }, keepAliveMs);
  try {
    for await (const m of messages(abort.signal)) {
      if (write(res, `id: ${id++}\n${frame(m)}\n\n`)) continue;
      full = true;
      await drained(res);
      full = false;
    }
  } catch (err) {
    // A fault (not an API error) goes to the router, which logs it and ends the reply.
    if (!(err instanceof DiegoError)) throw err;
    write(res, `event: error\ndata: ${errorEventData(err)}\n\n`);
  } finally {
    clearInterval(keepAlive);
  }
  res.end();
}

/** What /v1/events carries: task changes and (with the LRP API) the 2015 LRP events. */
type ApiEvent = { task: TaskEvent; lrp?: undefined } | { lrp: WatchLRPsResponse; task?: undefined };

function eventFrame(e: ApiEvent): string {
  if (e.task) return `event: task_${e.task.kind}\ndata: {"task":${taskResponseToJson(e.task.task)}}`;
  const sse = lrpEventToSse(e.lrp!)!;
  return `event: ${sse.name}\ndata: ${sse.data}`;
}

export function streamEvents(req: Req, res: Res, keepAliveMs: number, api: TaskApi, lrp: LrpApi | undefined, domain: string): Promise<void> {
  const sources: EventSource<ApiEvent>[] = [mapSource(api.taskEvents(domain), (task): ApiEvent => ({ task }))];
  if (lrp) sources.push(mapSource(lrp.lrpEvents(domain), (e): ApiEvent => ({ lrp: e })));
  // One queue for both, so a slow reader is ended once, whichever kind overflowed it.
  return sendStream(req, res, keepAliveMs, (signal) => fanIn(sources, signal, api.streamBacklog), eventFrame);
}

export const streamLogLines = (req: Req, res: Res, keepAliveMs: number, api: TaskApi, logGuid: string): Promise<void> =>
  sendStream(req, res, keepAliveMs, (signal) => api.streamLogs(logGuid, signal), (m) => {
    const data = writeJson({
      log_guid: m.logGuid,
      source_name: m.sourceName,
      stream: m.stream === 2 ? "stderr" : "stdout",
      message: m.message,
      timestamp: m.timestamp,
      task_guid: m.taskGuid,
    });
    return `event: log\ndata: ${data}`;
  });
