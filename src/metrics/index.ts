export { metricsHandler, startMetricsServer, InvalidMetricsListenError, type MetricsServer } from "./http.js";
export { metricsSettings } from "./settings.js";
