import { describe, expect, it } from "vitest";
import {
  DEFAULT_CRASH_POLICY,
  maxBackoffExponent,
  nextCrashCount,
  restartAt,
  restartDelayMs,
  restartsImmediately,
  shouldRestart,
  type CrashPolicy,
} from "../../src/model/lrp-crash-policy.js";

// The 2015 restart schedule (reference 4.2-4.3; bbs models/actual_lrp_test.go's cases).

const MIN = 60_000;
const S = 1_000;
const NS = 1_000_000n; // per ms

describe("crash restart policy, 2015 defaults", () => {
  it("has 2015's constants: 3 immediate, 30 s doubling 5 times to 16 min, 200 restarts, 5 min reset", () => {
    expect(DEFAULT_CRASH_POLICY).toEqual({ immediateRestarts: 3, minBackoffMs: 30 * S, maxBackoffMs: 16 * MIN, maxRestarts: 200, resetAfterMs: 5 * MIN });
    expect(maxBackoffExponent(DEFAULT_CRASH_POLICY)).toBe(5);
  });

  it.each([
    [0, 0],
    [1, 0],
    [2, 0],
    [3, 30 * S],
    [4, 60 * S],
    [5, 2 * MIN],
    [6, 4 * MIN],
    [7, 8 * MIN],
    [8, 16 * MIN],
    [9, 16 * MIN],
    [199, 16 * MIN],
    [200, undefined],
    [201, undefined],
  ])("crash_count %i restarts after %s ms", (count, delay) => {
    expect(restartDelayMs(count)).toBe(delay);
    expect(restartsImmediately(count)).toBe(delay === 0);
  });

  it.each([
    // [crash_count, ms since the crash, restart?]
    [1, 0, true],
    [2, 0, true],
    [3, 29_999, false],
    [3, 30_000, true],
    [7, 8 * MIN - 1, false],
    [7, 8 * MIN, true],
    [8, 16 * MIN - 1, false],
    [199, 16 * MIN, true],
    [200, 1_000 * MIN, false],
  ])("ShouldRestart with crash_count %i, %i ms after the crash: %s", (count, elapsed, expected) => {
    const crashedAt = 1_700_000_000_000_000_000n;
    expect(shouldRestart(crashedAt + BigInt(elapsed) * NS, crashedAt, count)).toBe(expected);
  });

  it("names when a crashed instance may restart, or never", () => {
    expect(restartAt(1_000n, 3)).toBe(1_000n + 30_000n * NS);
    expect(restartAt(1_000n, 200)).toBeUndefined();
  });

  it.each([
    // [count before, was RUNNING, ms since `since`, count after]
    [0, true, 1_000, 1],
    [4, true, 1 * MIN, 5],
    [4, true, 5 * MIN, 5], // exactly 5 minutes is not more than 5
    [4, true, 5 * MIN + 1, 1],
    [4, false, 60 * MIN, 5], // the reset applies only to RUNNING
    [199, true, 6 * MIN, 1],
  ])("a crash with count %i (RUNNING: %s, for %i ms) makes count %i", (before, running, elapsed, after) => {
    const since = 1_700_000_000_000_000_000n;
    expect(nextCrashCount(before, running, since, since + BigInt(elapsed) * NS)).toBe(after);
  });
});

describe("crash restart policy, scaled for tests", () => {
  const fast: CrashPolicy = { immediateRestarts: 3, minBackoffMs: 100, maxBackoffMs: 1_600, maxRestarts: 10, resetAfterMs: 1_000 };

  it.each([
    [2, 0],
    [3, 100],
    [4, 200],
    [7, 1_600],
    [9, 1_600],
    [10, undefined],
  ])("crash_count %i restarts after %s ms", (count, delay) => {
    expect(restartDelayMs(count, fast)).toBe(delay);
  });

  it("a maximum that is not a power of two of the minimum is still the cap", () => {
    const odd: CrashPolicy = { ...fast, maxBackoffMs: 1_000 };
    expect(maxBackoffExponent(odd)).toBe(4);
    expect(restartDelayMs(6, odd)).toBe(800);
    expect(restartDelayMs(7, odd)).toBe(1_000);
  });

  it("the reset window is a parameter", () => {
    expect(nextCrashCount(5, true, 0n, 1_001n * NS, fast)).toBe(1);
    expect(nextCrashCount(5, true, 0n, 999n * NS, fast)).toBe(6);
  });
});
