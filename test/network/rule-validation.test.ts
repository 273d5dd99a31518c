import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid, type ErrorBody, type RestClient } from "../receptor/rest-client.js";

// security_group_rules validation through REST: the 2015 rule cases (reference 2.3 and 8.1 #14),
// each problem named in the 400 InvalidTask, every problem of a rule at once.

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let api: RestClient;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  api = createRestClient(receptor.url);
});

afterAll(async () => {
  await receptor?.stop();
  await nats?.dispose();
});

type Rule = Record<string, unknown>;
const task = (rules: Rule[], guid = uniqueGuid("rv")): Rule => ({
  task_guid: guid,
  domain: "rules",
  stack: "lucid64",
  action: { run: { path: "/bin/true" } },
  security_group_rules: rules,
});
const R = "security_group_rules[0]";
const RULE = "Invalid field: security_group_rules";

describe("valid rules (201, and read back as written with log)", () => {
  it.each<[string, Rule]>([
    ["tcp to a /16 with port_range 1-1024", { protocol: "tcp", destinations: ["1.2.3.4/16"], port_range: { start: 1, end: 1024 } }],
    ["tcp with ports [1]", { protocol: "tcp", destinations: ["8.8.8.8"], ports: [1] }],
    ["port_range 1-65535", { protocol: "tcp", destinations: ["8.8.8.8"], port_range: { start: 1, end: 65535 } }],
    ["tcp with log", { protocol: "tcp", destinations: ["8.8.8.8"], ports: [80, 443], log: true }],
    ["all with log", { protocol: "all", destinations: ["8.8.8.8"], log: true }],
    ["icmp with icmp_info 1/40", { protocol: "icmp", destinations: ["8.8.8.8"], icmp_info: { type: 1, code: 40 } }],
    ["icmp of any type and code", { protocol: "icmp", destinations: ["8.8.8.8"], icmp_info: { type: -1, code: -1 } }],
    ["a range and a CIDR together", { protocol: "udp", destinations: ["8.8.8.8-8.8.8.9", "8.8.8.8/16"], ports: [53] }],
    ["the older single destination", { protocol: "udp", destination: "10.0.0.1", port_range: { start: 53, end: 53 } }],
  ])("%s", async (_what, rule) => {
    const guid = uniqueGuid("ok");
    const created = await api.createTask(task([rule], guid));
    expect({ status: created.status, text: created.text }).toEqual({ status: 201, text: "" });
    const back = (await api.getTask(guid)).json<{ security_group_rules: Rule[] }>();
    expect(back.security_group_rules).toEqual([{ log: false, ...rule }]);
  });
});

describe("invalid rules: 400 InvalidTask naming each problem", () => {
  it.each<[string, Rule, string[]]>([
    ["an unknown protocol", { protocol: "invalid", destinations: ["1.2.3.4"] }, [`Invalid field: ${R}.protocol`]],
    ["an unknown protocol and no destination", { protocol: "invalid" }, [`Invalid field: ${R}.protocol`, `Invalid field: ${R}.destinations [ Must have at least 1 destination ]`]],
    ["ports []", { protocol: "tcp", destinations: ["1.2.3.4"], ports: [] }, [`Invalid field: ${R}.ports`]],
    ["ports [0]", { protocol: "tcp", destinations: ["1.2.3.4"], ports: [0] }, [`Invalid field: ${R}.ports`]],
    ["ports [65536]", { protocol: "tcp", destinations: ["1.2.3.4"], ports: [80, 65536] }, [`Invalid field: ${R}.ports`]],
    ["both ports and port_range", { protocol: "tcp", destinations: ["1.2.3.4"], ports: [1], port_range: { start: 1, end: 2 } }, [`Invalid: ${R} has both ports and port_range`]],
    ["tcp with neither", { protocol: "tcp", destinations: ["1.2.3.4"] }, [`Missing required field: ${R}.ports or port_range`]],
    ["udp with neither", { protocol: "udp", destinations: ["1.2.3.4"] }, [`Missing required field: ${R}.ports or port_range`]],
    ["port_range 1024-1", { protocol: "tcp", destinations: ["1.2.3.4"], port_range: { start: 1024, end: 1 } }, [`Invalid field: ${R}.port_range`]],
    ["port_range starting at 0", { protocol: "udp", destinations: ["1.2.3.4"], port_range: { start: 0, end: 1 } }, [`Invalid field: ${R}.port_range`]],
    ["udp with log", { protocol: "udp", destinations: ["1.2.3.4"], ports: [53], log: true }, [`Invalid field: ${R}.log`]],
    ["icmp without icmp_info", { protocol: "icmp", destinations: ["1.2.3.4"] }, [`Missing required field: ${R}.icmp_info`]],
    ["icmp with ports", { protocol: "icmp", destinations: ["1.2.3.4"], icmp_info: { type: 8, code: 0 }, ports: [1] }, [`Invalid field: ${R}.ports`]],
    ["icmp with port_range", { protocol: "icmp", destinations: ["1.2.3.4"], icmp_info: { type: 8, code: 0 }, port_range: { start: 1, end: 2 } }, [`Invalid field: ${R}.port_range`]],
    ["icmp with log", { protocol: "icmp", destinations: ["1.2.3.4"], icmp_info: { type: 8, code: 0 }, log: true }, [`Invalid field: ${R}.log`]],
    ["icmp type 256", { protocol: "icmp", destinations: ["1.2.3.4"], icmp_info: { type: 256, code: 0 } }, [`Invalid field: ${R}.icmp_info`]],
    ["all with ports, port_range and icmp_info", { protocol: "all", destinations: ["1.2.3.4"], ports: [1], port_range: { start: 1, end: 2 }, icmp_info: { type: 8, code: 0 } }, [`Invalid field: ${R}.ports`, `Invalid field: ${R}.port_range`, `Invalid field: ${R}.icmp_info`]],
    ["tcp with icmp_info", { protocol: "tcp", destinations: ["1.2.3.4"], ports: [1], icmp_info: { type: 8, code: 0 } }, [`Invalid field: ${R}.icmp_info`]],
    ["destination 8.8", { protocol: "all", destinations: ["8.8"] }, [`Invalid field: ${R}.destinations [ "8.8": Invalid IP ]`]],
    ["destination garbage/32", { protocol: "all", destinations: ["garbage/32"] }, [`Invalid field: ${R}.destinations [ "garbage/32": Invalid CIDR ]`]],
    ["a reversed range", { protocol: "all", destinations: ["1.2.3.4-1.2.1.3"] }, [`Invalid field: ${R}.destinations [ "1.2.3.4-1.2.1.3": Invalid IP range: first address is greater than the last ]`]],
    ["a range with spaces", { protocol: "all", destinations: ["1.2.3.4 - 1.2.1.3"] }, [`Invalid field: ${R}.destinations [ "1.2.3.4 - 1.2.1.3": Invalid IP range ]`]],
    ["destinations []", { protocol: "all", destinations: [] }, [`Invalid field: ${R}.destinations [ Must have at least 1 destination ]`]],
    ["an IPv6 destination", { protocol: "all", destinations: ["::1"] }, [`Invalid field: ${R}.destinations [ "::1": Invalid IP ]`]],
    [
      "every problem of one rule at once",
      { protocol: "udp", destinations: ["1.2.3.4", "8.8"], ports: [0], log: true, icmp_info: { type: 8, code: 0 } },
      [`Invalid field: ${R}.ports`, `Invalid field: ${R}.icmp_info`, `Invalid field: ${R}.log`, `Invalid field: ${R}.destinations [ "8.8": Invalid IP ]`],
    ],
  ])("%s", async (_what, rule, problems) => {
    const reply = await api.createTask(task([rule]));
    expect(reply.status).toBe(400);
    expect(reply.json<ErrorBody>()).toEqual({ name: "InvalidTask", message: [RULE, ...problems].join(", ") });
  });

  it("names each invalid rule by its index, leaving valid ones out", async () => {
    const ok = { protocol: "all", destinations: ["1.2.3.4"] };
    const reply = await api.createTask(task([ok, { protocol: "tcp", destinations: ["1.2.3.4"] }, ok, { protocol: "all" }]));
    expect(reply.json<ErrorBody>().message).toBe(
      [
        RULE,
        "Missing required field: security_group_rules[1].ports or port_range",
        RULE,
        "Invalid field: security_group_rules[3].destinations [ Must have at least 1 destination ]",
      ].join(", "),
    );
  });

  it("a port or icmp value of the wrong JSON type is InvalidJSON naming it", async () => {
    const reply = await api.createTask(task([{ protocol: "tcp", destinations: ["1.2.3.4"], ports: ["80"], icmp_info: { type: "8" } }]));
    expect(reply.status).toBe(400);
    const body = reply.json<ErrorBody>();
    expect(body.name).toBe("InvalidJSON");
    expect(body.message).toContain("security_group_rules[0].ports[0]");
    expect(body.message).toContain("security_group_rules[0].icmp_info.type");
  });
});
