import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActualLRPSchema, ActualLrpState, DesiredLRPResponseSchema, RoutesSchema } from "../../src/gen/diego/v1/lrp_pb.js";
import { Balancer } from "../../src/router/balancer.js";
import { messagesFor } from "../../src/router/registry-message.js";
import { RouteTable } from "../../src/router/route-table.js";

// The route table and the registration diff as pure functions: records in, lookups and NATS
// messages out.

const desired = (guid: string, cfRouter: unknown, logGuid = "log-" + guid) =>
  create(DesiredLRPResponseSchema, {
    processGuid: guid,
    logGuid,
    ports: [8080],
    routes: create(RoutesSchema, { entries: cfRouter === undefined ? {} : { "cf-router": JSON.stringify(cfRouter) } }),
  });

const actual = (guid: string, index: number, state: ActualLrpState, hostPort: number, extra: { evacuating?: boolean; address?: string } = {}) =>
  create(ActualLRPSchema, {
    processGuid: guid,
    index,
    state,
    instanceGuid: `ig-${guid}-${index}${extra.evacuating ? "-evac" : ""}`,
    address: state === ActualLrpState.RUNNING ? "10.0.0.1" : "",
    ports: state === ActualLrpState.RUNNING ? [{ containerPort: 8080, hostPort }] : [],
    ...extra,
  });

const ids = (t: RouteTable, host: string) => t.lookup(host)?.endpoints.map((e) => e.id).sort();

describe("route table", () => {
  it("routes a hostname (any case) to the RUNNING instances' host ports for the route's container port", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["Hello.Local"], port: 8080 }]));
    expect(t.lookup("hello.local")?.endpoints).toEqual([]);
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 61001));
    t.setActual(actual("p", 1, ActualLrpState.CLAIMED, 0));
    t.setActual(actual("p", 2, ActualLrpState.RUNNING, 61003));
    expect(ids(t, "HELLO.local")).toEqual(["10.0.0.1:61001", "10.0.0.1:61003"]);
    expect(t.lookup("other.local")).toBeUndefined();
  });

  it("takes out an instance that stops running or is removed", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["a.local"], port: 8080 }]));
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 61001));
    t.setActual(actual("p", 1, ActualLrpState.RUNNING, 61002));
    t.setActual(actual("p", 0, ActualLrpState.CRASHED, 0));
    expect(ids(t, "a.local")).toEqual(["10.0.0.1:61002"]);
    t.removeActual(actual("p", 1, ActualLrpState.RUNNING, 61002));
    expect(ids(t, "a.local")).toEqual([]);
  });

  it("keeps an evacuating copy routable beside its replacement until the copy is removed", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["a.local"], port: 8080 }]));
    const copy = actual("p", 0, ActualLrpState.RUNNING, 61001, { evacuating: true, address: "10.0.0.9" });
    t.setActual(copy);
    t.setActual(actual("p", 0, ActualLrpState.UNCLAIMED, 0));
    expect(ids(t, "a.local")).toEqual(["10.0.0.9:61001"]);
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 62000));
    expect(ids(t, "a.local")).toEqual(["10.0.0.1:62000", "10.0.0.9:61001"]);
    t.removeActual(copy);
    expect(ids(t, "a.local")).toEqual(["10.0.0.1:62000"]);
  });

  it("drops a route removed by an update at once, and a removed DesiredLRP's hostnames", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["a.local", "b.local"], port: 8080 }]));
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 61001));
    t.setDesired(desired("p", [{ hostnames: ["b.local"], port: 8080 }]));
    expect(t.lookup("a.local")).toBeUndefined();
    expect(ids(t, "b.local")).toEqual(["10.0.0.1:61001"]);
    t.removeDesired("p");
    expect(t.hostnames()).toEqual([]);
  });

  it("ignores an unparsable cf-router value and a route to a port the instance does not publish", () => {
    const t = new RouteTable();
    t.setDesired(create(DesiredLRPResponseSchema, { processGuid: "bad", routes: { entries: { "cf-router": "{not json" } } }));
    t.setDesired(desired("p", [{ hostnames: ["x.local"], port: 9090 }, { hostnames: "y", port: 8080 }]));
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 61001));
    expect(t.hostnames()).toEqual(["x.local"]);
    expect(ids(t, "x.local")).toEqual([]);
  });

  it("gives one hostname routed by two LRPs the instances of both", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["shared.local"], port: 8080 }]));
    t.setDesired(desired("q", [{ hostnames: ["shared.local"], port: 8080 }]));
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 61001));
    t.setActual(actual("q", 0, ActualLrpState.RUNNING, 61002));
    expect(ids(t, "shared.local")).toEqual(["10.0.0.1:61001", "10.0.0.1:61002"]);
    t.removeDesired("p");
    expect(ids(t, "shared.local")).toEqual(["10.0.0.1:61002"]);
  });
});

describe("registration messages", () => {
  it("registers a new RUNNING instance with all hostnames of its route, in 2015's shape", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["a.example.com", "b.example.com"], port: 8080, route_service_url: "https://rs.example.com" }]));
    const m = messagesFor(t.setActual(actual("p", 0, ActualLrpState.RUNNING, 60001)));
    expect(m.unregister).toEqual([]);
    expect(m.register).toEqual([
      { host: "10.0.0.1", port: 60001, uris: ["a.example.com", "b.example.com"], app: "log-p", private_instance_id: "ig-p-0", route_service_url: "https://rs.example.com" },
    ]);
  });

  it("unregisters hostnames an update removed, and everything of an instance that crashed", () => {
    const t = new RouteTable();
    t.setDesired(desired("p", [{ hostnames: ["a.local", "b.local"], port: 8080 }], ""));
    t.setActual(actual("p", 0, ActualLrpState.RUNNING, 60001));
    const update = messagesFor(t.setDesired(desired("p", [{ hostnames: ["b.local"], port: 8080 }], "")));
    // No app (empty log_guid): the key is left out.
    expect(update.unregister).toEqual([{ host: "10.0.0.1", port: 60001, uris: ["a.local"], private_instance_id: "ig-p-0" }]);
    expect(update.register).toEqual([{ host: "10.0.0.1", port: 60001, uris: ["b.local"], private_instance_id: "ig-p-0" }]);
    const crash = messagesFor(t.setActual(actual("p", 0, ActualLrpState.UNCLAIMED, 0)));
    expect(crash).toEqual({ register: [], unregister: [{ host: "10.0.0.1", port: 60001, uris: ["b.local"], private_instance_id: "ig-p-0" }] });
    expect(t.registrations()).toEqual([]);
  });
});

describe("balancer", () => {
  const pool = (n: number) => ({
    hostname: "h",
    endpoints: Array.from({ length: n }, (_, i) => ({ id: `e${i}`, host: "h", port: i, processGuid: "p", index: i, instanceGuid: `i${i}`, evacuating: false, app: "" })),
  });

  it("goes round the pool, skipping endpoints tried for this request", () => {
    const b = new Balancer();
    const p = pool(3);
    const picks = Array.from({ length: 6 }, () => b.pick(p, new Set())!.id);
    expect(new Set(picks.slice(0, 3)).size).toBe(3);
    expect(picks.slice(3)).toEqual(picks.slice(0, 3));
    expect(b.pick(p, new Set(["e0", "e1"]))!.id).toBe("e2");
    expect(b.pick(p, new Set(["e0", "e1", "e2"]))).toBeUndefined();
  });

  it("skips an endpoint that refused a connection for a while, unless nothing else is left", () => {
    let now = 0;
    const b = new Balancer(() => now);
    const p = pool(2);
    b.markFailed(p.endpoints[0]!);
    expect(Array.from({ length: 4 }, () => b.pick(p, new Set())!.id)).toEqual(["e1", "e1", "e1", "e1"]);
    expect(b.pick(p, new Set(["e1"]))!.id).toBe("e0");
    now = 10_000;
    expect(new Set(Array.from({ length: 4 }, () => b.pick(p, new Set())!.id))).toEqual(new Set(["e0", "e1"]));
  });
});
