// The 2015 crash restart policy (reference section 4, bbs models/restart_calculator.go), as pure
// functions with every duration a parameter so that tests can run the schedule in seconds.
// Times are nanoseconds since the Unix epoch (an ActualLRP's `since`); durations are ms.
//
//   crash_count after a crash  1, 2 -> restart now (written UNCLAIMED, never seen CRASHED)
//                              3..199 -> CRASHED, restart after min(30 s x 2^min(count-3, 5), 16 min)
//                              >= 200 -> CRASHED for good (until killed, rescaled or deleted)
//   a crash after more than 5 min RUNNING counts as the first again.

export interface CrashPolicy {
  /** Crash counts below this restart at once (2015: 3, so crashes 1 and 2). */
  immediateRestarts: number;
  /** The first backoff, doubled per further crash (2015: 30 s). */
  minBackoffMs: number;
  /** The longest backoff (2015: 16 min). */
  maxBackoffMs: number;
  /** From this crash count on, never restart (2015: 200). */
  maxRestarts: number;
  /** A crash after RUNNING longer than this resets the count to 1 (2015: 5 min). */
  resetAfterMs: number;
}

export const DEFAULT_CRASH_POLICY: Readonly<CrashPolicy> = Object.freeze({
  immediateRestarts: 3,
  minBackoffMs: 30_000,
  maxBackoffMs: 16 * 60_000,
  maxRestarts: 200,
  resetAfterMs: 5 * 60_000,
});

const NS_PER_MS = 1_000_000n;

/** 2015's MaxBackoffCount: the doublings from the first backoff to the longest (5 by default). */
export function maxBackoffExponent(policy: CrashPolicy): number {
  return Math.ceil(Math.log2(Math.ceil(policy.maxBackoffMs / policy.minBackoffMs)));
}

/**
 * How long after the crash that made `crashCount` the instance may start again: 0 for an
 * immediate restart, undefined for never.
 */
export function restartDelayMs(crashCount: number, policy: CrashPolicy = DEFAULT_CRASH_POLICY): number | undefined {
  if (crashCount < policy.immediateRestarts) return 0;
  if (crashCount >= policy.maxRestarts) return undefined;
  const doublings = Math.min(crashCount - policy.immediateRestarts, maxBackoffExponent(policy));
  return Math.min(policy.minBackoffMs * 2 ** doublings, policy.maxBackoffMs);
}

/** 2015's ShouldRestart(now, crashedAt, crashCount): the backoff of this crash has passed. */
export function shouldRestart(now: bigint, crashedAt: bigint, crashCount: number, policy: CrashPolicy = DEFAULT_CRASH_POLICY): boolean {
  const delay = restartDelayMs(crashCount, policy);
  if (delay === undefined) return false;
  return now >= crashedAt + BigInt(delay) * NS_PER_MS;
}

/** When the instance may restart (ns), or undefined for never. */
export function restartAt(crashedAt: bigint, crashCount: number, policy: CrashPolicy = DEFAULT_CRASH_POLICY): bigint | undefined {
  const delay = restartDelayMs(crashCount, policy);
  return delay === undefined ? undefined : crashedAt + BigInt(delay) * NS_PER_MS;
}

/** The crash count after a crash; `wasRunning` with `since` the time it became RUNNING. */
export function nextCrashCount(crashCount: number, wasRunning: boolean, since: bigint, now: bigint, policy: CrashPolicy = DEFAULT_CRASH_POLICY): number {
  if (wasRunning && now - since > BigInt(policy.resetAfterMs) * NS_PER_MS) return 1;
  return crashCount + 1;
}

/** Whether a crash that made `crashCount` restarts at once (written UNCLAIMED, auctioned now). */
export function restartsImmediately(crashCount: number, policy: CrashPolicy = DEFAULT_CRASH_POLICY): boolean {
  return restartDelayMs(crashCount, policy) === 0;
}
