export { startRouter, type Router, type RouterOptions } from "./start-router.js";
export { routerSettings, routerProcessSettings, ROUTER_DEFAULTS } from "./settings.js";
export { isRouterWorker, registersRoutes, reportReady, startRouterProcesses } from "./router-processes.js";
export { RouterListenError, RouterProcessError } from "./errors.js";
export { RouteTable, type Endpoint, type Pool, type Registration, type TableChange } from "./route-table.js";
export { cfRoutesOf, type CfRoute } from "./cf-routes.js";
export { messagesFor, registryMessage, type RegistryMessage } from "./registry-message.js";
export { REGISTER, UNREGISTER } from "./registrar.js";
