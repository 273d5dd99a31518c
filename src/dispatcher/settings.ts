import { defaultsOf, durationSetting, intSetting } from "../settings/index.js";
import { completionSettings } from "../store/index.js";

export const dispatcherOwnSettings = {
  callbackTimeout: durationSetting({ flag: "callback-timeout", env: "DIEGO_CALLBACK_TIMEOUT", default: "10s", min: 1, help: "per-call timeout of completion callbacks" }),
  callbackConcurrency: intSetting({ flag: "callback-concurrency", env: "DIEGO_CALLBACK_CONCURRENCY", default: 100, min: 1, help: "callbacks in flight at once per dispatcher" }),
} as const;

/** Everything the dispatcher reads, its own settings and those it shares with the converger. */
export const dispatcherSettings = { ...dispatcherOwnSettings, ...completionSettings } as const;

export const DISPATCHER_DEFAULTS = defaultsOf(dispatcherSettings);
