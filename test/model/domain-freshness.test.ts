import { describe, expect, it } from "vitest";
import { domainProblem, parseDomainMaxAge } from "../../src/model/domain-freshness.js";

// The Cache-Control of PUT /v1/domains/:domain, as 2015 read it.

describe("domain max-age", () => {
  it.each([
    [[], { ttlSeconds: 0 }],
    [["max-age=1000"], { ttlSeconds: 1000 }],
    [["public", "max-age=1000"], { ttlSeconds: 1000 }],
    [["max-age=0"], { ttlSeconds: 0 }],
    [["public, max-age=1000"], { problem: "max-age directive missing from request" }],
    [["no-cache"], { problem: "max-age directive missing from request" }],
    [["max-age=abc"], { problem: "invalid-max-age-directive: max-age=abc" }],
    [["max-age="], { problem: "invalid-max-age-directive: max-age=" }],
    [["max-age=-5"], { problem: "invalid-max-age-directive: max-age=-5" }],
    [["max-age=4294967296"], { problem: "invalid-max-age-directive: max-age=4294967296" }],
    [["max-age=4294967295"], { ttlSeconds: 4294967295 }],
  ])("%j -> %j", (values, expected) => {
    expect(parseDomainMaxAge(values)).toEqual(expected);
  });

  it("an empty domain is named", () => {
    expect(domainProblem("")).toBe("domain missing from request");
    expect(domainProblem("cf-apps")).toBeUndefined();
  });
});
