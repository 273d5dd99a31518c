import { defaultsOf, durationSetting } from "../settings/index.js";
import { leaderLockSettings } from "../nats/index.js";
import { cellTtlSettings, completionSettings, evacuationSettings, lrpCrashSettings } from "../store/index.js";

export const convergerOwnSettings = {
  convergeInterval: durationSetting({ flag: "converge-interval", env: "DIEGO_CONVERGE_INTERVAL", default: "30s", min: 1, help: "how often the converger checks every task and LRP instance" }),
  kickInterval: durationSetting({ flag: "kick-interval", env: "DIEGO_KICK_INTERVAL", default: "30s", min: 1, help: "a task untouched this long is re-auctioned or its callback retried" }),
  pendingTimeout: durationSetting({ flag: "pending-timeout", env: "DIEGO_PENDING_TIMEOUT", default: "30m", min: 1, help: "PENDING longer than this fails: not started within time limit" }),
  staleUnclaimedTimeout: durationSetting({ flag: "stale-unclaimed-timeout", env: "DIEGO_STALE_UNCLAIMED_TIMEOUT", default: "30s", min: 1, help: "an LRP instance UNCLAIMED longer than this is auctioned again" }),
  claimTimeout: durationSetting({ flag: "claim-timeout", env: "DIEGO_CLAIM_TIMEOUT", default: "5m", min: 1, help: "CLAIMED but not RUNNING longer than this fails: not claimed within time limit" }),
} as const;

/** Everything the converger reads, its own settings and those it shares. */
export const convergerSettings = { ...convergerOwnSettings, ...leaderLockSettings, ...completionSettings, ...cellTtlSettings, ...lrpCrashSettings, ...evacuationSettings } as const;

export const CONVERGER_DEFAULTS = defaultsOf(convergerSettings);
