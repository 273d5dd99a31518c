import { describe, expect, it } from "vitest";
import { formatByteSize } from "../../cell-agent/src/executor/index.js";
import { formatGoDuration } from "../../src/duration/index.js";

const ms = (n: number): bigint => BigInt(n) * 1_000_000n;

describe("Go duration text in 'exceeded <duration> timeout'", () => {
  it.each([
    [0n, "0s"],
    [500n, "500ns"],
    [1_500n, "1.5µs"],
    [ms(10), "10ms"],
    [ms(200), "200ms"],
    [1_234_567n, "1.234567ms"],
    [ms(1000), "1s"],
    [ms(1500), "1.5s"],
    [ms(60_000), "1m0s"],
    [ms(90_000), "1m30s"],
    [ms(3_600_000), "1h0m0s"],
    [ms(3_723_500), "1h2m3.5s"],
  ])("%s ns reads %s", (ns, text) => {
    expect(formatGoDuration(ns)).toBe(text);
  });
});

describe("human sizes in 'Downloaded <artifact> (<size>)'", () => {
  it.each([
    [0, "0"],
    [12, "12B"],
    [1024, "1K"],
    [1536, "1.5K"],
    [10 * 1024 * 1024, "10M"],
    [1.25 * 1024 ** 3, "1.2G"],
  ])("%s bytes reads %s", (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });
});
