import type http from "node:http";
import http2 from "node:http2";
import { apiRequests, apiRequestSeconds } from "./metrics.js";

// API requests by route: the REST route pattern or the RPC path, so that guids and arbitrary
// paths do not each become a time series.

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

const REST_ROUTES: Array<[RegExp, string]> = [
  [/^\/v1\/tasks\/?$/, "/v1/tasks"],
  [/^\/v1\/tasks\/[^/]+\/cancel\/?$/, "/v1/tasks/:guid/cancel"],
  [/^\/v1\/tasks\/[^/]+\/?$/, "/v1/tasks/:guid"],
  [/^\/v1\/domains\/[^/]+\/tasks\/?$/, "/v1/domains/:domain/tasks"],
  [/^\/v1\/cells\/?$/, "/v1/cells"],
  [/^\/v1\/events\/?$/, "/v1/events"],
  [/^\/v1\/logs\/[^/]+\/?$/, "/v1/logs/:log_guid"],
  [/^\/v1\/desired_lrps\/?$/, "/v1/desired_lrps"],
  [/^\/v1\/desired_lrps\/[^/]+\/?$/, "/v1/desired_lrps/:guid"],
  [/^\/v1\/actual_lrps\/?$/, "/v1/actual_lrps"],
  [/^\/v1\/actual_lrps\/[^/]+\/?$/, "/v1/actual_lrps/:guid"],
  [/^\/v1\/actual_lrps\/[^/]+\/index\/[^/]*$/, "/v1/actual_lrps/:guid/index/:index"],
  [/^\/v1\/domains\/?$/, "/v1/domains"],
  [/^\/v1\/domains\/[^/]*$/, "/v1/domains/:domain"],
  [/^\/(healthz|readyz|metrics)$/, ""],
];

const RPC_PATH = /^\/(diego\.v1\.(TaskService|CellService|LRPService)|grpc\.health\.v1\.Health|grpc\.reflection\.v1(alpha)?\.ServerReflection)\/[A-Za-z]+$/;

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);

export function routeOf(url: string | undefined): string {
  const path = (url ?? "/").split("?")[0]!;
  if (RPC_PATH.test(path)) return path;
  for (const [pattern, name] of REST_ROUTES) if (pattern.test(path)) return name || path;
  return "other";
}

/** The grpc-status a gRPC call ended with: in its trailers, or in its headers (trailers-only). */
function grpcStatus(res: Res): string {
  if (!(res instanceof http2.Http2ServerResponse)) return "";
  const stream = res.stream as http2.ServerHttp2Stream & { sentTrailers?: http2.OutgoingHttpHeaders };
  const status = stream.sentTrailers?.["grpc-status"] ?? stream.sentHeaders?.["grpc-status"];
  return status === undefined ? "" : String(status);
}

/** Counts and times the request once its reply has ended (or the client has gone). */
export function observeApiRequest(req: Req, res: Res): void {
  const end = apiRequestSeconds.startTimer();
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    const route = routeOf(req.url);
    const method = METHODS.has(req.method ?? "") ? req.method! : "other";
    end({ route, method });
    apiRequests.inc({ route, method, code: res.headersSent ? String(res.statusCode) : "none", grpc_code: grpcStatus(res) });
  };
  res.once("finish", finish);
  res.once("close", finish);
}
