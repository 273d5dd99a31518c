// The API's public surface. Layout (as connect-es): core/ is protocol-neutral (the Task API,
// event fan-out, errors, the RPC methods); rest/, grpc/ and connect/ each map it to one
// protocol with the same file roles (errors.ts: the one mapping of API errors to that
// protocol); http/ is what all share on HTTP (reading a body, errors before any handler).
export { createTaskApi, type TaskApi, type TaskApiDeps } from "./core/task-api.js";
export type { TaskEvent, TaskEventKind } from "./core/events.js";
export { createLrpApi, lrpStopMessage, type LrpApi, type LrpApiDeps } from "./core/lrp-api.js";
export { apiFailure, type ApiFailure } from "./core/errors.js";
export { taskBinaryView } from "./core/task-binary-view.js";
export { createRestRoutes } from "./rest/router.js";
export { cellJson } from "./rest/cell-json.js";
export { taskJsonView } from "./rest/task-json-view.js";
export { MAX_BODY_BYTES, readBody } from "./http/read-body.js";
export { createConnectRoutes } from "./connect/services.js";
export { startReceptorServer, type ReceptorServer, type TlsFiles } from "./http-server.js";
export { toConnectError } from "./connect/errors.js";
export { callStatus } from "./grpc/errors.js";
export { AuthConfigError, createApiAuth, type AuthOptions } from "./auth.js";
export { createReadiness, type Readiness } from "./health.js";
export { createOperationsRoutes } from "./operations.js";
