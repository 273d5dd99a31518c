// Nanoseconds since the Unix epoch with sub-millisecond resolution: wall-clock anchored once,
// then advanced by the monotonic clock.
const anchor = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export function nowNanos(): bigint {
  return anchor + process.hrtime.bigint();
}

export const nanosFromMs = (ms: number): bigint => BigInt(Math.round(ms * 1_000_000));
