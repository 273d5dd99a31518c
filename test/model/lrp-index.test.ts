import { describe, expect, it } from "vitest";
import { parseActualIndex } from "../../src/model/lrp-index.js";

describe("the :index of an actual LRP route", () => {
  it.each([
    ["0", { index: 0 }],
    ["17", { index: 17 }],
    ["9999", { index: 9999 }],
    [undefined, { problem: "index missing from request" }],
    ["", { problem: "index missing from request" }],
    ["one", { problem: "index not a number" }],
    ["1.5", { problem: "index not a number" }],
    ["0x1", { problem: "index not a number" }],
    ["-1", { problem: "Invalid field: index" }],
    ["10000", { problem: "Invalid field: index" }],
    ["99999999999999999999", { problem: "Invalid field: index" }],
  ])("%j -> %j", (raw, expected) => {
    expect(parseActualIndex(raw)).toEqual(expected);
  });
});
