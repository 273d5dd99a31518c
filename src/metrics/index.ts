export * from "./metrics.js";
export { labelRoute, observeApiRequest, routeOf } from "./api-metrics.js";
export { registerCellLedger, registerStartQueue, registerTaskStates } from "./gauges.js";
export { recordAuction, recordCallback, recordLrpConvergence } from "./hooks.js";
export { countReconnects } from "./nats-metrics.js";
export { addChildMetrics, metricsHandler, startMetricsServer, InvalidMetricsListenError, type MetricsJson, type MetricsServer } from "./http.js";
export { metricsSettings } from "./settings.js";
