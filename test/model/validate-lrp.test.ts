import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DesiredLRPCreateRequestSchema, DesiredLRPUpdateRequestSchema, RoutesSchema } from "../../src/gen/diego/v1/lrp_pb.js";
import { decodeDesiredLRPCreateRequest, decodeDesiredLRPUpdateRequest } from "../../src/model/lrp-json.js";
import { MAX_LRP_INSTANCES, validateDesiredLRPCreateRequest, validateDesiredLRPUpdateRequest } from "../../src/model/validate-lrp.js";

// DesiredLRP validation in 2015's order and words (reference 1.2, 1.5), every problem at once.

const valid = {
  process_guid: "some-process-guid",
  domain: "some-domain",
  rootfs: "preloaded:cflinuxfs2",
  instances: 1,
  setup: { download: { from: "http://example.com/app.tgz", to: "/app" } },
  action: { run: { path: "/bin/sh", args: ["-c", "sleep 100"], user: "vcap" } },
  monitor: { run: { path: "/bin/true" } },
  start_timeout: 60,
  memory_mb: 128,
  disk_mb: 512,
  cpu_weight: 100,
  ports: [8080, 5222],
  routes: { "cf-router": [{ hostnames: ["app.example.com"], port: 8080 }], "diego-ssh": { container_port: 2222 } },
  env: [{ name: "A", value: "1" }],
  annotation: "x".repeat(10240),
  egress_rules: [{ protocol: "tcp", destinations: ["10.0.0.0/8"], ports: [80] }],
};

const problems = (changes: Record<string, unknown>): string => {
  const body: Record<string, unknown> = { ...valid, ...changes };
  for (const [k, v] of Object.entries(changes)) if (v === undefined) delete body[k];
  return validateDesiredLRPCreateRequest(decodeDesiredLRPCreateRequest(body)).join(", ");
};

describe("DesiredLRPCreateRequest validation", () => {
  it("accepts a complete valid request, and 0 instances", () => {
    expect(problems({})).toBe("");
    expect(problems({ instances: 0, setup: undefined, monitor: undefined, routes: undefined })).toBe("");
  });

  it("names every problem of an empty body in 2015's order (rootfs twice)", () => {
    expect(validateDesiredLRPCreateRequest(decodeDesiredLRPCreateRequest({})).join(", ")).toBe(
      "Invalid field: domain, Invalid field: process_guid, Invalid field: rootfs, Invalid field: rootfs, invalid action type",
    );
  });

  it.each(["abc def", "abc/def", "abc,def", "abc.def", "abc∆def", "", "x".repeat(256)])("refuses process_guid %j", (guid) => {
    expect(problems({ process_guid: guid })).toBe("Invalid field: process_guid");
  });

  it.each([
    ["rootfs without a scheme", { rootfs: "ploop" }, "Invalid field: rootfs"],
    ["empty domain", { domain: "" }, "Invalid field: domain"],
    ["no action", { action: undefined }, "invalid action type"],
    ["an action of no type", { action: {} }, "invalid action type"],
    ["an invalid action", { action: { run: {} } }, "Invalid field: action, Invalid field: path"],
    ["an invalid setup", { setup: { download: { from: "ftp://x", to: "" } } }, "Invalid field: setup, Invalid field: from, Invalid field: to"],
    ["a setup of no type", { setup: {} }, "Invalid field: setup, invalid action type"],
    ["an invalid monitor", { monitor: { timeout: { action: { run: { path: "/bin/true" } } } } }, "Invalid field: monitor, Invalid field: timeout"],
    ["negative instances", { instances: -1 }, "Invalid field: instances"],
    ["too many instances", { instances: MAX_LRP_INSTANCES + 1 }, "Invalid field: instances"],
    ["cpu_weight 101", { cpu_weight: 101 }, "Invalid field: cpu_weight"],
    ["an annotation of 10241 bytes", { annotation: "x".repeat(10241) }, "Invalid field: annotation"],
    ["routes over 4096 bytes", { routes: { a: "x".repeat(2046), b: "y".repeat(2047) } }, "Invalid field: routes"],
    [
      "an egress rule of an unknown protocol",
      { egress_rules: [{ protocol: "invalid" }] },
      "Invalid field: egress_rules, Invalid field: egress_rules[0].protocol, Invalid field: egress_rules[0].destinations [ Must have at least 1 destination ]",
    ],
    ["tcp rule with ports: []", { egress_rules: [{ protocol: "tcp", destinations: ["10.0.0.1"], ports: [] }] }, "Invalid field: egress_rules, Invalid field: egress_rules[0].ports"],
    ["negative memory_mb (2015: a 500)", { memory_mb: -5 }, "Invalid field: memory_mb"],
    ["negative disk_mb (2015: a 500)", { disk_mb: -5 }, "Invalid field: disk_mb"],
    ["an env var without a name (2015: a 500)", { env: [{ name: "", value: "v" }] }, "invalid field: name cannot be blank"],
    ["a port over 65535", { ports: [8080, 70000] }, "Invalid field: ports"],
  ])("refuses %s", (_what, changes, expected) => {
    expect(problems(changes)).toBe(expected);
  });

  it("a route provider named __proto__ is refused (it would not survive storage)", () => {
    expect(problems({ routes: JSON.parse('{"__proto__": {"polluted": true}, "cf-router": []}') })).toBe("Invalid field: routes");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("routes of exactly 4096 bytes of values are accepted", () => {
    // "x…" as JSON is the string's length plus two quotes.
    expect(problems({ routes: { a: "x".repeat(2046), b: "y".repeat(2046) } })).toBe("");
  });

  it("a route value that is not JSON text (only gRPC can send one) is refused", () => {
    const req = create(DesiredLRPCreateRequestSchema, { ...decodeDesiredLRPCreateRequest(valid), routes: create(RoutesSchema, { entries: { "cf-router": "[{" } }) });
    expect(validateDesiredLRPCreateRequest(req)).toEqual(["Invalid field: routes"]);
  });

  it("names every problem at once, in 2015's order, the later additions last", () => {
    expect(
      problems({ domain: "", rootfs: "", action: { run: {} }, instances: -2, cpu_weight: 500, memory_mb: -1, egress_rules: [{ protocol: "udp", destinations: ["1.2.3.4"] }] }),
    ).toBe(
      "Invalid field: domain, Invalid field: rootfs, Invalid field: rootfs, Invalid field: action, Invalid field: path, Invalid field: instances, Invalid field: cpu_weight, " +
        "Invalid field: egress_rules, Missing required field: egress_rules[0].ports or port_range, Invalid field: memory_mb",
    );
  });
});

describe("DesiredLRPUpdateRequest validation", () => {
  const check = (body: unknown): string => validateDesiredLRPUpdateRequest(decodeDesiredLRPUpdateRequest(body)).join(", ");

  it.each([
    [{}, ""],
    [{ instances: 0 }, ""],
    [{ routes: {} }, ""],
    [{ annotation: "" }, ""],
    [{ instances: -1 }, "Invalid field: instances"],
    [{ annotation: "x".repeat(10241) }, "Invalid field: annotation"],
    [{ routes: { "cf-router": "z".repeat(4095) } }, "Invalid field: routes"],
    [{ instances: -1, annotation: "x".repeat(10241), routes: { r: "z".repeat(4095) } }, "Invalid field: instances, Invalid field: annotation, Invalid field: routes"],
  ])("%j: %j", (body, expected) => {
    expect(check(body)).toBe(expected);
  });

  it("tells an absent field from a zero one", () => {
    const none = create(DesiredLRPUpdateRequestSchema, {});
    expect([none.instances, none.annotation, none.routes]).toEqual([undefined, undefined, undefined]);
    const zero = decodeDesiredLRPUpdateRequest({ instances: 0, annotation: "", routes: {} });
    expect([zero.instances, zero.annotation, zero.routes?.entries]).toEqual([0, "", {}]);
  });
});
