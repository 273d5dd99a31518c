import { describe, expect, it } from "vitest";
import { formatDuration, InvalidDurationError, parseDuration } from "../../src/duration/index.js";

// The one Go-duration module: flags are parsed with it, limits and failure reasons written with it.

describe("parseDuration (milliseconds)", () => {
  it.each<[string, number]>([
    ["500ms", 500],
    ["30s", 30_000],
    ["1.5s", 1_500],
    ["2m", 120_000],
    ["1h30m", 5_400_000],
    ["1m30s250ms", 90_250],
    [" 10s ", 10_000],
    ["250", 250], // a bare integer is milliseconds
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "s", "-5s", "10x", "5 s", "1h 30m", "1.5", "ten seconds"])("refuses %j, naming it", (text) => {
    expect(() => parseDuration(text)).toThrow(new InvalidDurationError(`invalid duration '${text}' (use e.g. 500ms, 30s, 2m, 1h)`));
  });
});

describe("formatDuration (milliseconds, as Go writes them)", () => {
  it.each<[number, string]>([
    [0, "0s"],
    [1, "1ms"],
    [1.5, "1.5ms"],
    [999, "999ms"],
    [1_000, "1s"],
    [1_500, "1.5s"],
    [60_000, "1m0s"],
    [90_000, "1m30s"],
    [3_600_000, "1h0m0s"],
  ])("%d ms reads %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
