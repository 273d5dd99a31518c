import { durationSetting } from "../settings/index.js";

// Timings of the records the store keeps, read by every process that judges them: when a cell
// counts as gone, how long a completed task is kept, how soon a failing callback is retried.

export const cellTtlSettings = {
  cellTtl: durationSetting({ flag: "cell-ttl", env: "DIEGO_CELL_TTL", default: "10s", min: 1, help: "a cell whose heartbeat is older than this is gone" }),
} as const;

export const completionSettings = {
  completedTtl: durationSetting({ flag: "completed-ttl", env: "DIEGO_COMPLETED_TTL", default: "2m", min: 1, help: "completed tasks nobody resolves are removed after this" }),
  callbackRetryInterval: durationSetting({ flag: "callback-retry-interval", env: "DIEGO_CALLBACK_RETRY_INTERVAL", default: "30s", min: 1, help: "wait before another round of a failing callback" }),
} as const;
