export { startDispatcher, DispatcherOptionsError, type Dispatcher, type DispatcherOptions } from "./start-dispatcher.js";
export { postCallback, type CallbackOutcome, type PostOptions } from "./post-callback.js";
export { nextStep, wantsCallback, type CallbackPolicy, type CallbackStep } from "./callback-schedule.js";
export { callbackBody, type RoundResult } from "./callback-round.js";
export { dispatcherSettings, dispatcherOwnSettings, DISPATCHER_DEFAULTS } from "./settings.js";
