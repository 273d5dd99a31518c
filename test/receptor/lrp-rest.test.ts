import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, openLrpBuckets, subjects } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid, type ErrorBody, type RestClient } from "./rest-client.js";
import { openSse } from "./sse-client.js";

// The LRP REST routes of contract section 7 against a real receptor and nats-server. The test
// plays the cell and the auctioneer through the LRP store and NATS: it claims and starts
// instances, and reads the auction kicks and stop messages the receptor publishes.

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let api: RestClient;
let nc: NatsConnection;
let store: LrpStore;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  api = createRestClient(receptor.url);
  nc = await connectNats({ url: nats.url, name: "lrp-rest-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
});

afterAll(async () => {
  store?.close();
  await nc?.drain();
  await receptor?.stop();
  await nats?.dispose();
});

const lrp = (guid: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  process_guid: guid,
  domain: "lrp-rest",
  rootfs: "preloaded:cflinuxfs2",
  instances: 2,
  action: { run: { path: "/bin/sleep", args: ["100"] } },
  ports: [8080],
  routes: { "cf-router": [{ hostnames: ["a.example.com"], port: 8080 }] },
  ...extra,
});

const json = (body: unknown): [string, Record<string, string>] => [JSON.stringify(body), { "Content-Type": "application/json" }];
const post = (body: unknown) => api.request("POST", "/v1/desired_lrps", ...json(body));
const put = (guid: string, body: unknown) => api.request("PUT", `/v1/desired_lrps/${guid}`, ...json(body));

interface ActualJson {
  process_guid: string;
  instance_guid: string;
  cell_id: string;
  index: number;
  state: string;
  ports: { container_port: number; host_port: number }[] | null;
  modification_tag: { epoch: string; index: number };
}

const actuals = async (guid: string): Promise<ActualJson[]> => {
  const r = await api.request("GET", `/v1/actual_lrps/${guid}`);
  expect(r.status).toBe(200);
  return r.json<ActualJson[]>().sort((a, b) => a.index - b.index);
};

/** The next message on `subject`, or after `act` runs. */
async function nextMessage(subject: string, act: () => Promise<unknown>): Promise<{ reply: unknown; messages: string[] }> {
  const sub: Subscription = nc.subscribe(subject);
  await nc.flush();
  const messages: string[] = [];
  const got = (async () => {
    for await (const m of sub) {
      messages.push(m.string());
      return;
    }
  })();
  const reply = await act();
  await got;
  sub.unsubscribe();
  return { reply, messages };
}

/** Plays a cell: claims and starts `index` as instance `ig` on `cellId`. */
async function runOn(guid: string, index: number, cellId: string, ig: string): Promise<void> {
  const key = { cellId, instanceGuid: ig };
  await store.claim(guid, index, key);
  await store.start(guid, index, key, { address: "10.0.0.9", ports: [{ containerPort: 8080, hostPort: 61001 }] } as never);
}

describe("desired LRPs", () => {
  it("creates one with its UNCLAIMED instances and kicks the auction", async () => {
    const guid = uniqueGuid("lrp");
    const { reply, messages } = await nextMessage(subjects.auctionKick, () => post(lrp(guid)));
    expect((reply as { status: number }).status).toBe(201);
    expect(messages).toHaveLength(1);

    const got = await api.request("GET", `/v1/desired_lrps/${guid}`);
    expect(got.status).toBe(200);
    const d = got.json<Record<string, unknown>>();
    expect(d).toMatchObject({ process_guid: guid, domain: "lrp-rest", instances: 2, ports: [8080], routes: { "cf-router": [{ hostnames: ["a.example.com"], port: 8080 }] } });
    expect(d.modification_tag).toMatchObject({ index: 0 });
    expect(Object.keys(d)[0]).toBe("process_guid");

    const list = await actuals(guid);
    expect(list.map((a) => [a.index, a.state])).toEqual([
      [0, "UNCLAIMED"],
      [1, "UNCLAIMED"],
    ]);
    expect(list[0]!.ports).toBeNull();
  });

  it("refuses a second LRP of the same guid with 409 DesiredLRPAlreadyExists", async () => {
    const guid = uniqueGuid("dup");
    expect((await post(lrp(guid))).status).toBe(201);
    const again = await post(lrp(guid, { instances: 5 }));
    expect(again.status).toBe(409);
    expect(again.json<ErrorBody>()).toEqual({ name: "DesiredLRPAlreadyExists", message: `Desired LRP with guid '${guid}' already exists` });
    expect((await actuals(guid)).length).toBe(2);
  });

  it("names every invalid field in one 400 InvalidLRP, and wrong JSON types as InvalidJSON", async () => {
    const bad = await post({ process_guid: "has space", domain: "", rootfs: "", instances: -1, cpu_weight: 101 });
    expect(bad.status).toBe(400);
    const body = bad.json<ErrorBody>();
    expect(body.name).toBe("InvalidLRP");
    for (const item of ["Invalid field: domain", "Invalid field: process_guid", "Invalid field: rootfs", "invalid action type", "Invalid field: instances", "Invalid field: cpu_weight"]) {
      expect(body.message).toContain(item);
    }
    const types = await post(lrp(uniqueGuid("types"), { instances: "three" }));
    expect(types.status).toBe(400);
    expect(types.json<ErrorBody>().name).toBe("InvalidJSON");
    expect(types.json<ErrorBody>().message).toContain("instances");
    const notJson = await api.request("POST", "/v1/desired_lrps", "{nope");
    expect(notJson.json<ErrorBody>().name).toBe("InvalidJSON");
  });

  it("answers 404 DesiredLRPNotFound for an unknown guid on get, update and delete", async () => {
    for (const [method, body] of [["GET"], ["PUT", '{"instances":1}'], ["DELETE"]] as const) {
      const r = await api.request(method, "/v1/desired_lrps/no-such-lrp", body);
      expect(r.status).toBe(404);
      expect(r.json<ErrorBody>()).toEqual({ name: "DesiredLRPNotFound", message: "Desired LRP with guid 'no-such-lrp' not found" });
    }
  });

  it("lists all, or one domain's", async () => {
    const a = uniqueGuid("list-a");
    const b = uniqueGuid("list-b");
    expect((await post(lrp(a, { domain: "list-one" }))).status).toBe(201);
    expect((await post(lrp(b, { domain: "list-two" }))).status).toBe(201);
    const guids = async (q: string) => (await api.request("GET", `/v1/desired_lrps${q}`)).json<{ process_guid: string }[]>().map((d) => d.process_guid);
    expect(await guids("")).toEqual(expect.arrayContaining([a, b]));
    expect(await guids("?domain=list-one")).toEqual([a]);
    expect(await guids("?domain=nothing-here")).toEqual([]);
    const acts = (await api.request("GET", "/v1/actual_lrps?domain=list-two")).json<ActualJson[]>();
    expect(new Set(acts.map((x) => x.process_guid))).toEqual(new Set([b]));
  });

  it("scales up (new UNCLAIMED instances, an auction kick) and down (stops to the cells)", async () => {
    const guid = uniqueGuid("scale");
    expect((await post(lrp(guid))).status).toBe(201);
    const up = await nextMessage(subjects.auctionKick, () => put(guid, { instances: 4, annotation: "bigger" }));
    expect((up.reply as { status: number }).status).toBe(204);
    expect((await actuals(guid)).map((a) => a.index)).toEqual([0, 1, 2, 3]);
    const d = (await api.request("GET", `/v1/desired_lrps/${guid}`)).json<{ instances: number; annotation: string; modification_tag: { index: number } }>();
    expect(d).toMatchObject({ instances: 4, annotation: "bigger", modification_tag: { index: 1 } });

    // Index 1 runs on cell-a; index 2 is still UNCLAIMED.
    await runOn(guid, 1, "cell-a", "ig-1");
    const down = await nextMessage(subjects.lrpStop("cell-a"), () => put(guid, { instances: 1 }));
    expect((down.reply as { status: number }).status).toBe(204);
    expect(JSON.parse(down.messages[0]!)).toEqual({ process_guid: guid, index: 1, instance_guid: "ig-1" });
    // UNCLAIMED ones go at once; the RUNNING one stays until its cell has stopped it.
    expect((await actuals(guid)).map((a) => [a.index, a.state])).toEqual([
      [0, "UNCLAIMED"],
      [1, "RUNNING"],
    ]);

    const invalid = await put(guid, { instances: -2 });
    expect(invalid.status).toBe(400);
    expect(invalid.json<ErrorBody>()).toEqual({ name: "InvalidLRP", message: "Invalid field: instances" });
  });

  it("deletes one: 204, its instances retired, then 404", async () => {
    const guid = uniqueGuid("delete");
    expect((await post(lrp(guid))).status).toBe(201);
    await runOn(guid, 0, "cell-d", "ig-d0");
    const del = await nextMessage(subjects.lrpStop("cell-d"), () => api.request("DELETE", `/v1/desired_lrps/${guid}`));
    expect((del.reply as { status: number }).status).toBe(204);
    expect(JSON.parse(del.messages[0]!)).toEqual({ process_guid: guid, index: 0, instance_guid: "ig-d0" });
    expect((await actuals(guid)).map((a) => a.index)).toEqual([0]); // until cell-d removes it
    expect((await api.request("GET", `/v1/desired_lrps/${guid}`)).status).toBe(404);
    expect((await api.request("DELETE", `/v1/desired_lrps/${guid}`)).status).toBe(404);
  });
});

describe("actual LRPs", () => {
  it("gets one index, and names a bad or unknown index", async () => {
    const guid = uniqueGuid("index");
    expect((await post(lrp(guid))).status).toBe(201);
    const one = await api.request("GET", `/v1/actual_lrps/${guid}/index/1`);
    expect(one.status).toBe(200);
    expect(one.json<ActualJson>()).toMatchObject({ process_guid: guid, index: 1, state: "UNCLAIMED", modification_tag: { index: 0 } });

    for (const [index, message] of [
      ["abc", "index not a number"],
      ["", "index missing from request"],
      ["-1", "Invalid field: index"],
    ]) {
      const r = await api.request("GET", `/v1/actual_lrps/${guid}/index/${index}`);
      expect(r.status).toBe(400);
      expect(r.json<ErrorBody>()).toEqual({ name: "InvalidRequest", message });
    }
    const missing = await api.request("GET", `/v1/actual_lrps/${guid}/index/7`);
    expect(missing.status).toBe(404);
    expect(missing.json<ErrorBody>()).toEqual({ name: "ActualLRPIndexNotFound", message: `process-guid '${guid}' does not exist or has no instance at index 7` });
    expect((await api.request("GET", "/v1/actual_lrps/no-such-lrp")).text).toBe("[]");
  });

  it("kills an index: an UNCLAIMED one is removed at once, a RUNNING one is stopped by its cell", async () => {
    const guid = uniqueGuid("kill");
    expect((await post(lrp(guid))).status).toBe(201);
    expect((await api.request("DELETE", `/v1/actual_lrps/${guid}/index/0`)).status).toBe(204);
    expect((await api.request("GET", `/v1/actual_lrps/${guid}/index/0`)).status).toBe(404);

    await runOn(guid, 1, "cell-k", "ig-k1");
    const kill = await nextMessage(subjects.lrpStop("cell-k"), () => api.request("DELETE", `/v1/actual_lrps/${guid}/index/1`));
    expect((kill.reply as { status: number }).status).toBe(204);
    expect(JSON.parse(kill.messages[0]!)).toEqual({ process_guid: guid, index: 1, instance_guid: "ig-k1" });
    // The cell stops the container and removes its record: the index is gone.
    await store.remove(guid, 1, { cellId: "cell-k", instanceGuid: "ig-k1" });
    expect((await api.request("GET", `/v1/actual_lrps/${guid}/index/1`)).status).toBe(404);
    // The desired state is untouched (convergence starts a new instance).
    expect((await api.request("GET", `/v1/desired_lrps/${guid}`)).json<{ instances: number }>().instances).toBe(2);

    const absent = await api.request("DELETE", `/v1/actual_lrps/${guid}/index/1`);
    expect(absent.status).toBe(404);
    expect(absent.json<ErrorBody>().name).toBe("ActualLRPIndexNotFound");
  });

  it("does not take a process guid as a key pattern (*, >)", async () => {
    const guid = uniqueGuid("pattern");
    expect((await post(lrp(guid))).status).toBe(201);
    for (const pattern of ["%2A", "%3E", `${guid}.%2A`]) {
      const r = await api.request("GET", `/v1/actual_lrps/${pattern}`);
      expect(r.status).toBe(200);
      expect(r.text).toBe("[]");
      expect((await api.request("GET", `/v1/actual_lrps/${pattern}/index/0`)).status).toBe(404);
      expect((await api.request("DELETE", `/v1/actual_lrps/${pattern}/index/0`)).status).toBe(404);
    }
    expect((await actuals(guid)).length).toBe(2);
  });
});

describe("domains", () => {
  it("keeps a domain fresh for its max-age, one without a header for ever", async () => {
    const short = uniqueGuid("short");
    const forever = uniqueGuid("forever");
    const r1 = await api.request("PUT", `/v1/domains/${short}`, undefined, { "Cache-Control": "max-age=1" });
    expect(r1.status).toBe(204);
    expect((await api.request("PUT", `/v1/domains/${forever}`)).status).toBe(204);
    const fresh = async () => (await api.request("GET", "/v1/domains")).json<string[]>();
    expect(await fresh()).toEqual(expect.arrayContaining([short, forever]));
    // Expiry is a timestamp readers compare: poll until the second has passed.
    const deadline = Date.now() + 5000;
    while ((await fresh()).includes(short)) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await fresh()).toContain(forever);
  });

  it("refuses a Cache-Control without max-age, a bad max-age and an empty domain", async () => {
    const noDirective = await api.request("PUT", "/v1/domains/d", undefined, { "Cache-Control": "no-cache" });
    expect(noDirective.status).toBe(400);
    expect(noDirective.json<ErrorBody>()).toEqual({ name: "InvalidRequest", message: "max-age directive missing from request" });
    const negative = await api.request("PUT", "/v1/domains/d", undefined, { "Cache-Control": "max-age=-5" });
    expect(negative.status).toBe(400);
    expect(negative.json<ErrorBody>().message).toBe("invalid-max-age-directive: max-age=-5");
    const empty = await api.request("PUT", "/v1/domains/");
    expect(empty.status).toBe(400);
    expect(empty.json<ErrorBody>()).toEqual({ name: "InvalidRequest", message: "domain missing from request" });
  });
});

describe("events", () => {
  it("sends the 2015 LRP events for create, update and delete, alongside task events", async () => {
    const events = await openSse(`${receptor.url}/v1/events`);
    try {
      const guid = uniqueGuid("events");
      const of = (name: string) => (f: { event: string; data: string }) => f.event === name && f.data.includes(guid);
      expect((await post(lrp(guid, { instances: 1 }))).status).toBe(201);
      await events.waitFor(of("actual_lrp_created"));
      expect((await put(guid, { instances: 1, annotation: "changed" })).status).toBe(204);
      await events.waitFor(of("desired_lrp_changed"));
      expect((await api.request("DELETE", `/v1/desired_lrps/${guid}`)).status).toBe(204);
      await events.waitFor(of("actual_lrp_removed"));
      const taskGuid = uniqueGuid("events-task");
      const task = { task_guid: taskGuid, domain: "d", stack: "lucid64", action: { run: { path: "/bin/true" } } };
      expect((await api.createTask(task)).status).toBe(201);
      await events.waitFor((f) => f.event === "task_created" && f.data.includes(taskGuid));

      const mine = events.frames.filter((f) => f.data.includes(guid));
      expect(mine.map((f) => f.event)).toEqual(["desired_lrp_created", "actual_lrp_created", "desired_lrp_changed", "desired_lrp_removed", "actual_lrp_removed"]);
      const created = JSON.parse(mine[0]!.data) as { desired_lrp: { process_guid: string; modification_tag: { index: number } } };
      expect(created.desired_lrp).toMatchObject({ process_guid: guid, modification_tag: { index: 0 } });
      const actual = JSON.parse(mine[1]!.data) as { actual_lrp: ActualJson };
      expect(actual.actual_lrp).toMatchObject({ process_guid: guid, index: 0, state: "UNCLAIMED" });
      const changed = JSON.parse(mine[2]!.data) as Record<string, { annotation?: string; modification_tag: { index: number } }>;
      expect(Object.keys(changed)).toEqual(["desired_lrp_before", "desired_lrp_after"]);
      expect(changed.desired_lrp_before!.annotation).toBeUndefined();
      expect(changed.desired_lrp_after).toMatchObject({ annotation: "changed", modification_tag: { index: 1 } });
      expect(JSON.parse(mine[4]!.data)).toMatchObject({ actual_lrp: { process_guid: guid, index: 0 } });
    } finally {
      events.close();
    }
  });

  it("shows an instance claimed and started as actual_lrp_changed with before and after", async () => {
    const events = await openSse(`${receptor.url}/v1/events?domain=lrp-events-domain`);
    try {
      const guid = uniqueGuid("started");
      expect((await post(lrp(guid, { instances: 1, domain: "lrp-events-domain" }))).status).toBe(201);
      await runOn(guid, 0, "cell-e", "ig-e0");
      const running = await events.waitFor((f) => f.event === "actual_lrp_changed" && f.data.includes('"state":"RUNNING"'));
      const change = JSON.parse(running.data) as { actual_lrp_before: ActualJson; actual_lrp_after: ActualJson };
      expect(change.actual_lrp_before.state).toBe("CLAIMED");
      expect(change.actual_lrp_after).toMatchObject({ cell_id: "cell-e", instance_guid: "ig-e0", ports: [{ container_port: 8080, host_port: 61001 }] });
      // Another domain's LRP is not on this stream.
      expect((await post(lrp(uniqueGuid("other"), { instances: 1, domain: "elsewhere" }))).status).toBe(201);
      expect(events.frames.every((f) => f.data.includes("lrp-events-domain"))).toBe(true);
    } finally {
      events.close();
    }
  });
});

describe("metrics", () => {
  it("counts LRP requests by route pattern, not by guid", async () => {
    const guid = uniqueGuid("metrics");
    expect((await post(lrp(guid))).status).toBe(201);
    expect((await api.request("GET", `/v1/actual_lrps/${guid}/index/0`)).status).toBe(200);
    const text = (await api.request("GET", "/metrics")).text;
    expect(text).toContain('route="/v1/desired_lrps"');
    expect(text).toContain('route="/v1/actual_lrps/:guid/index/:index"');
    expect(text).not.toContain(guid);
  });
});

describe("authentication", () => {
  it("guards the LRP routes and LRPService like every other call", async () => {
    const guarded = await startTestReceptor(nats.url, { auth: { user: "lrp-user", password: "lrp-secret" } });
    try {
      const anonymous = createRestClient(guarded.url);
      const guid = uniqueGuid("auth");
      const refused = await anonymous.request("POST", "/v1/desired_lrps", ...json(lrp(guid)));
      expect(refused.status).toBe(401);
      expect(refused.json<ErrorBody>().name).toBe("Unauthorized");
      expect((await anonymous.request("DELETE", `/v1/actual_lrps/${guid}/index/0`)).status).toBe(401);
      expect((await anonymous.request("PUT", "/v1/domains/d")).status).toBe(401);
      const rpc = await fetch(`${guarded.url}/diego.v1.LRPService/ListDomains`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      expect(rpc.status).toBe(401);

      const basic = `Basic ${Buffer.from("lrp-user:lrp-secret").toString("base64")}`;
      const user = createRestClient(guarded.url, { headers: { Authorization: basic } });
      expect((await user.request("POST", "/v1/desired_lrps", ...json(lrp(guid)))).status).toBe(201);
      expect((await user.request("GET", `/v1/desired_lrps/${guid}`)).status).toBe(200);
    } finally {
      await guarded.stop();
    }
  });
});
