import type { CrashPolicy } from "../model/index.js";
import { durationSetting, intSetting, type SettingsOf } from "../settings/index.js";

// Timings of the records the store keeps, read by every process that judges them: when a cell
// counts as gone, how long a completed task is kept, how soon a failing callback is retried.

export const cellTtlSettings = {
  cellTtl: durationSetting({ flag: "cell-ttl", env: "DIEGO_CELL_TTL", default: "10s", min: 1, help: "a cell whose heartbeat is older than this is gone" }),
} as const;

export const completionSettings = {
  completedTtl: durationSetting({ flag: "completed-ttl", env: "DIEGO_COMPLETED_TTL", default: "2m", min: 1, help: "completed tasks nobody resolves are removed after this" }),
  callbackRetryInterval: durationSetting({ flag: "callback-retry-interval", env: "DIEGO_CALLBACK_RETRY_INTERVAL", default: "30s", min: 1, help: "wait before another round of a failing callback" }),
} as const;

// The crash restart policy (reference section 4): the cell writes a crash with it (restart at
// once or CRASHED, the reset after a long run) and the converger restarts CRASHED instances by it,
// so both read the same table.
export const lrpCrashSettings = {
  crashImmediateRestarts: intSetting({ flag: "crash-immediate-restarts", env: "DIEGO_CRASH_IMMEDIATE_RESTARTS", default: 2, min: 0, help: "an LRP instance's first crashes that restart at once, before any backoff" }),
  crashBackoff: durationSetting({ flag: "crash-backoff", env: "DIEGO_CRASH_BACKOFF", default: "30s", min: 1, help: "the first wait before a crashed LRP instance restarts, doubled per further crash" }),
  crashBackoffMax: durationSetting({ flag: "crash-backoff-max", env: "DIEGO_CRASH_BACKOFF_MAX", default: "16m", min: 1, help: "the longest wait before a crashed LRP instance restarts" }),
  crashMaxRestarts: intSetting({ flag: "crash-max-restarts", env: "DIEGO_CRASH_MAX_RESTARTS", default: 200, min: 1, help: "an LRP instance that crashed this many times is left CRASHED" }),
  crashResetAfter: durationSetting({ flag: "crash-reset-after", env: "DIEGO_CRASH_RESET_AFTER", default: "5m", min: 1, help: "a crash after RUNNING this long counts as the first again" }),
} as const;

/** The model's CrashPolicy from the settings (crash counts below immediateRestarts + 1 restart at once). */
export function crashPolicyFrom(s: SettingsOf<typeof lrpCrashSettings>): CrashPolicy {
  return {
    immediateRestarts: s.crashImmediateRestarts + 1,
    minBackoffMs: s.crashBackoff,
    maxBackoffMs: Math.max(s.crashBackoff, s.crashBackoffMax),
    maxRestarts: s.crashMaxRestarts,
    resetAfterMs: s.crashResetAfter,
  };
}

// How long a draining cell keeps an instance that has no running replacement yet; the converger
// drops an evacuating copy older than this.
export const evacuationSettings = {
  evacuationTimeout: durationSetting({ flag: "evacuation-timeout", env: "DIEGO_EVACUATION_TIMEOUT", default: "10m", min: 1, help: "a draining cell (SIGTERM to `diego cell`) keeps a RUNNING LRP instance this long at most, waiting for its replacement to run elsewhere; the converger drops evacuating copies older than this (`diego up` stops its instances at once)" }),
} as const;
