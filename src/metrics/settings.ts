import { stringSetting } from "../settings/index.js";

export const metricsSettings = {
  metricsListen: stringSetting({
    flag: "metrics-listen",
    env: "DIEGO_METRICS_LISTEN",
    default: "",
    help: "HOST:PORT serving Prometheus metrics on /metrics (empty: off; the receptor and `up` serve them on the API's /metrics)",
    doc: "HOST:PORT serving Prometheus metrics on `/metrics` (empty: off; the receptor and `up` serve them on the API's `/metrics`)",
  }),
} as const;
