import type http from "node:http";
import http2 from "node:http2";
import { apiRequests, apiRequestSeconds } from "./metrics.js";

// API requests by route: the REST route's label (the route sets it, see labelRoute) or the RPC
// path, so that guids and arbitrary paths do not each become a time series.

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

const ROUTE = Symbol("diego.metrics.route");
type Labelled = Res & { [ROUTE]?: string };

/** Names the route a request was answered by, for its metrics (a REST route, an RPC path). */
export function labelRoute(res: Res, route: string): void {
  (res as Labelled)[ROUTE] = route;
}

const RPC_PATH = /^\/(diego\.v1\.(TaskService|CellService|LRPService)|grpc\.health\.v1\.Health|grpc\.reflection\.v1(alpha)?\.ServerReflection)\/[A-Za-z]+$/;
const OPERATOR_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** The label of a request no route named: an RPC path or operator endpoint as itself, else "other". */
export function routeOf(url: string | undefined): string {
  const path = (url ?? "/").split("?")[0]!;
  return RPC_PATH.test(path) || OPERATOR_PATHS.has(path) ? path : "other";
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);

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
    const route = (res as Labelled)[ROUTE] ?? routeOf(req.url);
    const method = METHODS.has(req.method ?? "") ? req.method! : "other";
    end({ route, method });
    apiRequests.inc({ route, method, code: res.headersSent ? String(res.statusCode) : "none", grpc_code: grpcStatus(res) });
  };
  res.once("finish", finish);
  res.once("close", finish);
}
