export * from "./metrics.js";
export { labelRoute, observeApiRequest, routeOf } from "./api-metrics.js";
export { registerCellLedger, registerTaskStates } from "./gauges.js";
export { recordAuction, recordCallback, recordLrpConvergence } from "./hooks.js";
export { countReconnects } from "./nats-metrics.js";
export { metricsHandler, startMetricsServer, InvalidMetricsListenError, type MetricsServer } from "./http.js";
export { metricsSettings } from "./settings.js";
