/** Aborts a request that takes too long: a fixed deadline, or (idle) no progress for `ms`. */
export interface RequestTimer {
  /** Aborts on timeout or when the caller's signal aborts. */
  readonly signal: AbortSignal;
  readonly timedOut: boolean;
  readonly ms: number;
  /** Progress was made: restarts an idle timer (no-op for a deadline). */
  touch(): void;
  dispose(): void;
}

export function createRequestTimer(ms: number, mode: "deadline" | "idle", parent?: AbortSignal): RequestTimer {
  const controller = new AbortController();
  let timedOut = false;
  const fire = () => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${ms} ms`));
  };
  let timer = setTimeout(fire, ms);
  const signal = parent ? AbortSignal.any([parent, controller.signal]) : controller.signal;
  return {
    signal,
    ms,
    get timedOut() {
      return timedOut;
    },
    touch() {
      if (mode !== "idle" || signal.aborted) return;
      clearTimeout(timer);
      timer = setTimeout(fire, ms);
    },
    dispose() {
      clearTimeout(timer);
    },
  };
}
