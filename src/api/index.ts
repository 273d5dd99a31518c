export { createTaskApi, type TaskApi, type TaskApiDeps, type TaskEvent } from "./task-api.js";
export { createRestRoutes, cellJson, MAX_BODY_BYTES } from "./rest-routes.js";
export { createConnectRoutes } from "./connect-services.js";
export { startReceptorServer, type ReceptorServer } from "./http-server.js";
export { toConnectError } from "./connect-errors.js";
export { type TlsFiles } from "./http-server.js";
export { AuthConfigError } from "./auth.js";
