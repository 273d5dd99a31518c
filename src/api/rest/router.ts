import type { Logger } from "pino";
import { decodeTaskCreateRequest, DiegoError, echo, taskResponseToJson, writeJson } from "../../model/index.js";
import type { TaskApi } from "../core/task-api.js";
import type { Req, Res } from "../http/types.js";
import { readJsonBody } from "./body.js";
import { cellJson } from "./cell-json.js";
import { sendError, sendFailure } from "./errors.js";
import { sendJsonArray, type EncodedParts } from "./list.js";
import { send, sendJson } from "./reply.js";
import { streamEvents, streamLogLines } from "./sse.js";
import { taskJsonView } from "./task-json-view.js";
import type { LrpApi } from "../core/lrp-api.js";
import { lrpRoutes } from "./lrp-routes.js";
import type { Route } from "./route.js";
import { labelRoute } from "../../metrics/index.js";

// The receptor's REST routes (contract section 3): JSON in and out, every error as
// {"name","message"} (errors.ts).

export type RestHandler = (req: Req, res: Res) => Promise<boolean>;

export interface RestRoutesOptions {
  /** An idle event stream gets a comment line this often, so proxies do not cut it (15 s). */
  streamKeepAliveMs?: number;
  /** The LRP API: its routes, and its events on /v1/events (contract section 7). */
  lrp?: LrpApi;
}

const STREAM_KEEP_ALIVE_MS = 15_000;

/** The REST JSON of each task (of one domain), kept in the index: copied from there into the reply. */
function listJson(api: TaskApi, domain: string): EncodedParts {
  const tasks = api.listTasks(domain);
  return {
    count: tasks.length,
    length: (i) => tasks[i]!.viewLength(taskJsonView),
    copyTo: (i, target, at) => tasks[i]!.copyView(taskJsonView, target, at),
  };
}

export function createRestRoutes(api: TaskApi, logger?: Logger, opts: RestRoutesOptions = {}): RestHandler {
  const keepAliveMs = opts.streamKeepAliveMs ?? STREAM_KEEP_ALIVE_MS;
  const routes: Route[] = [
    {
      method: "POST",
      pattern: /^\/v1\/tasks\/?$/,
      label: "/v1/tasks",
      async handle(req, res) {
        await api.createTask(decodeTaskCreateRequest(await readJsonBody(req)));
        send(res, 201);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/tasks\/?$/,
      label: "/v1/tasks",
      async handle(_req, res, _p, query) {
        await sendJsonArray(res, listJson(api, query.get("domain") ?? ""));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/domains\/([^/]+)\/tasks\/?$/,
      label: "/v1/domains/:domain/tasks",
      async handle(_req, res, [domain]) {
        await sendJsonArray(res, listJson(api, domain!));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/tasks\/([^/]+)\/?$/,
      label: "/v1/tasks/:guid",
      async handle(_req, res, [guid]) {
        sendJson(res, 200, taskResponseToJson(await api.getTask(guid!)));
      },
    },
    {
      method: "DELETE",
      pattern: /^\/v1\/tasks\/([^/]+)\/?$/,
      label: "/v1/tasks/:guid",
      async handle(_req, res, [guid]) {
        await api.deleteTask(guid!);
        send(res, 200);
      },
    },
    {
      method: "POST",
      pattern: /^\/v1\/tasks\/([^/]+)\/cancel\/?$/,
      label: "/v1/tasks/:guid/cancel",
      async handle(req, res, [guid]) {
        req.resume();
        await api.cancelTask(guid!);
        send(res, 200);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/cells\/?$/,
      label: "/v1/cells",
      async handle(_req, res) {
        sendJson(res, 200, writeJson(api.listCells().map(cellJson)));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/events\/?$/,
      label: "/v1/events",
      streams: true,
      async handle(req, res, _p, query) {
        await streamEvents(req, res, keepAliveMs, api, opts.lrp, query.get("domain") ?? "");
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/logs\/([^/]+)\/?$/,
      label: "/v1/logs/:log_guid",
      streams: true,
      async handle(req, res, [logGuid]) {
        await streamLogLines(req, res, keepAliveMs, api, logGuid!);
      },
    },
    ...(opts.lrp ? lrpRoutes(opts.lrp) : []),
  ];

  return async (req, res) => {
    const { pathname, query } = splitTarget(req.url ?? "/");
    if (!pathname.startsWith("/v1/")) return false;
    let route: Route | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of routes) {
      if (!answers(r, req.method) || !(match = r.pattern.exec(pathname))) continue;
      route = r;
      break;
    }
    try {
      if (!route || !match) {
        // Rare: only now is every pattern tried, to tell 404 from 405.
        const matching = routes.filter((r) => r.pattern.test(pathname));
        if (matching.length === 0) {
          sendError(res, 404, "InvalidRequest", `no route for ${req.method} ${echo(pathname)}`);
        } else {
          labelRoute(res, matching[0]!.label);
          res.setHeader("Allow", matching.flatMap(allowed).join(", "));
          sendError(res, 405, "InvalidRequest", `method ${req.method} is not allowed on ${echo(pathname)}`);
        }
        return true;
      }
      labelRoute(res, route.label);
      const params = match.slice(1).map(decodePathSegment);
      await route.handle(req, res, params, new URLSearchParams(query));
    } catch (err) {
      sendFailure(res, err, pathname, logger);
    }
    return true;
  };
}

/** Whether the route serves the method: HEAD as GET without the body, except on streams. */
const answers = (r: Route, method: string | undefined): boolean => r.method === method || (method === "HEAD" && r.method === "GET" && !r.streams);

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
