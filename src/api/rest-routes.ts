import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Logger } from "pino";
import type { CellPresence } from "../gen/diego/v1/cell_pb.js";
import { bodyTooLarge, DiegoError, echo, type DiegoErrorName } from "../model/errors.js";
import { writeJson, type JsonValue } from "../model/json-writer.js";
import { decodeTaskCreateRequest, parseJsonBody, taskResponseToJson } from "../model/task-json.js";
import type { TaskApi } from "./task-api.js";

// The receptor's REST routes (contract section 3): JSON in and out, every error as
// {"name","message"}. A server fault is 500 UnknownError; bad input never is.

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

export const MAX_BODY_BYTES = 1024 * 1024;

const statuses: Record<DiegoErrorName, number> = {
  InvalidJSON: 400,
  InvalidTask: 400,
  InvalidRequest: 400,
  TaskGuidAlreadyExists: 409,
  TaskNotFound: 404,
  TaskNotDeletable: 409,
  TaskNotCancelable: 409,
  RequestTooLarge: 413,
  StreamTooSlow: 429,
  Unauthorized: 401,
  UnknownError: 500,
};

interface Route {
  method: string;
  pattern: RegExp;
  /** Server-Sent Events: no HEAD, which would hold the stream open for nothing. */
  streams?: boolean;
  handle(req: Req, res: Res, params: string[], query: URLSearchParams): Promise<void>;
}

export type RestHandler = (req: Req, res: Res) => Promise<boolean>;

export interface RestRoutesOptions {
  /** An idle event stream gets a comment line this often, so proxies do not cut it (15 s). */
  streamKeepAliveMs?: number;
}

const STREAM_KEEP_ALIVE_MS = 15_000;

export function createRestRoutes(api: TaskApi, logger?: Logger, opts: RestRoutesOptions = {}): RestHandler {
  const keepAliveMs = opts.streamKeepAliveMs ?? STREAM_KEEP_ALIVE_MS;
  const routes: Route[] = [
    {
      method: "POST",
      pattern: /^\/v1\/tasks\/?$/,
      async handle(req, res) {
        const body = await readBody(req);
        await api.createTask(decodeTaskCreateRequest(parseJsonBody(body)));
        send(res, 201);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/tasks\/?$/,
      async handle(_req, res, _p, query) {
        await sendJsonArray(res, api.listTasksJson(query.get("domain") ?? ""));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/domains\/([^/]+)\/tasks\/?$/,
      async handle(_req, res, [domain]) {
        await sendJsonArray(res, api.listTasksJson(domain));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/tasks\/([^/]+)\/?$/,
      async handle(_req, res, [guid]) {
        sendJson(res, 200, taskResponseToJson(await api.getTask(guid!)));
      },
    },
    {
      method: "DELETE",
      pattern: /^\/v1\/tasks\/([^/]+)\/?$/,
      async handle(_req, res, [guid]) {
        await api.deleteTask(guid!);
        send(res, 200);
      },
    },
    {
      method: "POST",
      pattern: /^\/v1\/tasks\/([^/]+)\/cancel\/?$/,
      async handle(req, res, [guid]) {
        req.resume();
        await api.cancelTask(guid!);
        send(res, 200);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/cells\/?$/,
      async handle(_req, res) {
        sendJson(res, 200, writeJson(api.listCells().map(cellJson)));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/events\/?$/,
      streams: true,
      async handle(req, res, _p, query) {
        await streamEvents(req, res, keepAliveMs, api, query.get("domain") ?? "");
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/logs\/([^/]+)\/?$/,
      streams: true,
      async handle(req, res, [logGuid]) {
        await streamLogLines(req, res, keepAliveMs, api, logGuid!);
      },
    },
  ];

  return async (req, res) => {
    const { pathname, query } = splitTarget(req.url ?? "/");
    if (!pathname.startsWith("/v1/")) return false;
    const matching = routes.filter((r) => r.pattern.test(pathname));
    const route = matching.find((r) => r.method === req.method || (req.method === "HEAD" && r.method === "GET" && !r.streams));
    try {
      if (!route) {
        if (matching.length === 0) {
          sendError(res, 404, "InvalidRequest", `no route for ${req.method} ${echo(pathname)}`);
        } else {
          res.setHeader("Allow", matching.flatMap(allowed).join(", "));
          sendError(res, 405, "InvalidRequest", `method ${req.method} is not allowed on ${echo(pathname)}`);
        }
        return true;
      }
      const params = route.pattern.exec(pathname)!.slice(1).map(decodePathSegment);
      await route.handle(req, res, params, new URLSearchParams(query));
    } catch (err) {
      if (err instanceof DiegoError) {
        sendError(res, statuses[err.code], err.code, err.message);
      } else if (err instanceof ClientGoneError || res.destroyed) {
        // Not a fault: the client closed the connection mid-request.
        logger?.debug({ err, path: pathname }, "client went before the reply");
        res.end();
      } else {
        logger?.error({ err, path: pathname }, "request failed");
        sendError(res, 500, "UnknownError", err instanceof Error ? err.message : String(err));
      }
    }
    return true;
  };
}

/** HEAD is answered like GET without the body (Node leaves the body out of a HEAD reply). */
const allowed = (r: Route): string[] => (r.method === "GET" && !r.streams ? ["GET", "HEAD"] : [r.method]);

/**
 * The path and query of a request target. The WHATWG URL parser costs a microsecond or two a
 * request and would also resolve dot segments and accept absolute URLs; the routes want the
 * path as sent (its segments are percent-decoded one by one).
 */
function splitTarget(target: string): { pathname: string; query: string } {
  if (!target.startsWith("/")) {
    // Absolute form ("http://host/v1/tasks"), which servers must accept too.
    const url = new URL(target, "http://receptor");
    return { pathname: url.pathname, query: url.search.slice(1) };
  }
  const mark = target.indexOf("?");
  const hash = target.indexOf("#");
  const end = hash < 0 ? target.length : hash;
  return mark < 0 || mark > end
    ? { pathname: target.slice(0, end), query: "" }
    : { pathname: target.slice(0, mark), query: target.slice(mark + 1, end) };
}

function decodePathSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new DiegoError("InvalidRequest", `malformed path segment '${echo(s)}'`);
  }
}

function readBody(req: Req): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.on("end", () => {
      ended = true;
      if (!failed) resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", () => {
      if (!failed) reject(new ClientGoneError());
    });
    req.on("close", () => {
      if (!failed && !ended) reject(new ClientGoneError());
    });
  });
}

/** The client closed the connection (or reset the stream) before its body arrived whole. */
class ClientGoneError extends Error {
  override readonly name = "ClientGoneError";
  constructor() {
    super("the client went before its request body arrived");
  }
}

const tooLarge = (): DiegoError => bodyTooLarge(MAX_BODY_BYTES);

function send(res: Res, status: number): void {
  res.writeHead(status, { "Content-Length": "0" });
  res.end();
}

function sendJson(res: Res, status: number, json: string | Buffer): void {
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": String(typeof json === "string" ? Buffer.byteLength(json) : json.length),
  });
  res.end(json);
}

/** What a large list is written in, one slice at a time as the client takes it. */
const LIST_SLICE_BYTES = 256 * 1024;
const [OPEN, COMMA, CLOSE] = ["[", ",", "]"].map((c) => Buffer.from(c)) as [Buffer, Buffer, Buffer];

/**
 * 200 with a JSON array of documents already encoded. Written in slices that wait for the client,
 * not copied into one buffer first: a list of 100,000 tasks is 53 MB, once per concurrent list.
 */
async function sendJsonArray(res: Res, parts: Buffer[]): Promise<void> {
  let size = 2 + Math.max(0, parts.length - 1);
  for (const p of parts) size += p.length;
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(size) });
  let slice: Buffer[] = [OPEN];
  let sliceBytes = 1;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) slice.push(COMMA);
    slice.push(parts[i]!);
    sliceBytes += parts[i]!.length + 1;
    if (sliceBytes < LIST_SLICE_BYTES) continue;
    if (!write(res, Buffer.concat(slice))) await drained(res);
    if (res.destroyed) return;
    slice = [];
    sliceBytes = 0;
  }
  slice.push(CLOSE);
  res.end(Buffer.concat(slice));
}

function sendError(res: Res, status: number, name: string, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, status, JSON.stringify({ name, message }));
}

export function cellJson(c: CellPresence): JsonValue {
  const resources = (r: CellPresence["capacity"]): JsonValue => ({
    memory_mb: r?.memoryMb ?? 0,
    disk_mb: r?.diskMb ?? 0,
    containers: r?.containers ?? 0,
  });
  return {
    cell_id: c.cellId,
    zone: c.zone,
    stacks: c.stacks,
    capacity: resources(c.capacity),
    available: resources(c.available),
    task_count: c.taskCount,
    rootfs_providers: {
      ...Object.fromEntries(c.rootfsSchemes.map((s) => [s, [] as JsonValue[]])),
      preloaded: c.stacks,
    },
  };
}

/**
 * false when the chunk had to be buffered: the connection is full. (The union of HTTP/1 and
 * HTTP/2 responses has no callable write(); both have one.)
 */
const write = (res: Res, chunk: string | Buffer): boolean => (res as ServerResponse).write(chunk);

/** Resolves once a full connection has room again, or is gone. */
function drained(res: Res): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

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
    if (!(err instanceof DiegoError)) throw err;
    write(res, `event: error\ndata: ${JSON.stringify({ name: err.code, message: err.message })}\n\n`);
  } finally {
    clearInterval(keepAlive);
  }
  res.end();
}

const streamEvents = (req: Req, res: Res, keepAliveMs: number, api: TaskApi, domain: string): Promise<void> =>
  sendStream(
    req,
    res,
    keepAliveMs,
    (signal) => api.watchTasks(domain, signal),
    (e) => `event: task_${e.kind}\ndata: {"task":${taskResponseToJson(e.task)}}`,
  );

const streamLogLines = (req: Req, res: Res, keepAliveMs: number, api: TaskApi, logGuid: string): Promise<void> =>
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
