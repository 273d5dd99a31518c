import { describe, expect, it } from "vitest";
import { exactInteger, writeJson } from "../../src/model/json-writer.js";

// created_at is nanoseconds since 1970: more digits than a double holds. The writer must put
// such integers out exactly, unquoted, and nothing a client sends may turn into one.

describe("JSON writer", () => {
  it("writes bigints exactly, marked or not, anywhere in the document", () => {
    const big = 2n ** 63n - 1n;
    expect(writeJson({ a: exactInteger(big), b: [exactInteger(-5n), big], c: { d: 1700000000123456789n } })).toBe(
      `{"a":${big},"b":[-5,${big}],"c":{"d":1700000000123456789}}`,
    );
  });

  it("matches JSON.stringify for everything else, leaving out undefined keys", () => {
    const v = { s: 'quote " and \\ and \u0000 and ✓', n: 1.5, t: true, z: null, u: undefined, list: ["x", 2] };
    expect(writeJson(v)).toBe(JSON.stringify(v));
  });

  it("keeps strings that look like marks as strings", () => {
    for (const s of ["\u0000deadbeef:5", "\u00000000000000000000:5", `${"\u0000"}x:1`]) {
      expect(JSON.parse(writeJson({ s, n: exactInteger(7n) }))).toEqual({ s, n: 7 });
    }
  });
});
