import * as grpc from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ActualLrpState,
  DesiredLRPCreateRequest,
  LRPServiceClient,
  type ActualLRP,
  type DesiredLRPResponse,
  type WatchLRPsResponse,
} from "../../src/gen/grpc-js/diego/v1/lrp.js";
import { connectNats, openLrpBuckets, subjects } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { grpcError } from "./grpc-client.js";
import { uniqueGuid } from "./rest-client.js";

// The LRPService through a stock @grpc/grpc-js client (h2c) and through Connect JSON (fetch),
// against a real receptor and nats-server: the same core as the REST routes.

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let client: LRPServiceClient;
let nc: NatsConnection;
let store: LrpStore;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  client = new LRPServiceClient(receptor.address, grpc.credentials.createInsecure());
  nc = await connectNats({ url: nats.url, name: "lrp-grpc-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
});

afterAll(async () => {
  client?.close();
  store?.close();
  await nc?.drain();
  await receptor?.stop();
  await nats?.dispose();
});

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
const call = <T>(start: (cb: Callback<T>) => unknown): Promise<T> =>
  new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res))));

const desired = (guid: string, domain = "lrp-grpc", instances = 2): DesiredLRPCreateRequest =>
  DesiredLRPCreateRequest.fromPartial({
    processGuid: guid,
    domain,
    rootfs: "preloaded:cflinuxfs2",
    instances,
    action: { run: { path: "/bin/sleep", args: ["100"] } },
    ports: [8080],
    routes: { entries: { "cf-router": '[{"hostnames":["g.example.com"],"port":8080}]' } },
  });

const create = (req: DesiredLRPCreateRequest) => call((cb) => client.createDesiredLrp(req, cb));
const get = (processGuid: string) => call<DesiredLRPResponse>((cb) => client.getDesiredLrp({ processGuid }, cb));
const actuals = async (processGuid: string): Promise<ActualLRP[]> =>
  (await call<{ actualLrps: ActualLRP[] }>((cb) => client.listActualLrPs({ processGuid, domain: "" }, cb))).actualLrps.sort((a, b) => a.index - b.index);

/** The first message published on `subject` while `act` runs. */
async function firstMessage(subject: string, act: () => Promise<unknown>): Promise<string> {
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  const got = (async () => {
    for await (const m of sub) return m.string();
    return "";
  })();
  await act();
  return got;
}

describe("LRPService over gRPC", () => {
  it("creates, gets, lists, scales and deletes, kicking the auction and stopping instances", async () => {
    const guid = uniqueGuid("grpc-lrp");
    expect(await firstMessage(subjects.auctionKick, () => create(desired(guid)))).toBe("");
    const d = await get(guid);
    expect(d).toMatchObject({ processGuid: guid, instances: 2, ports: [8080], modificationTag: { index: 0 } });
    expect(JSON.parse(d.routes!.entries["cf-router"]!)).toEqual([{ hostnames: ["g.example.com"], port: 8080 }]);
    const listed = await call<{ desiredLrps: DesiredLRPResponse[] }>((cb) => client.listDesiredLrPs({ domain: "lrp-grpc" }, cb));
    expect(listed.desiredLrps.map((x) => x.processGuid)).toContain(guid);
    expect((await actuals(guid)).map((a) => [a.index, a.state])).toEqual([
      [0, ActualLrpState.ACTUAL_LRP_STATE_UNCLAIMED],
      [1, ActualLrpState.ACTUAL_LRP_STATE_UNCLAIMED],
    ]);

    await firstMessage(subjects.auctionKick, () => call((cb) => client.updateDesiredLrp({ processGuid: guid, update: { instances: 3 } }, cb)));
    expect((await actuals(guid)).map((a) => a.index)).toEqual([0, 1, 2]);
    const one = await call<ActualLRP>((cb) => client.getActualLrp({ processGuid: guid, index: 2 }, cb));
    expect(one).toMatchObject({ processGuid: guid, index: 2, state: ActualLrpState.ACTUAL_LRP_STATE_UNCLAIMED });

    // Index 0 runs on cell-g: killing it sends the cell a stop.
    const key = { cellId: "cell-g", instanceGuid: "ig-g0" };
    await store.claim(guid, 0, key);
    await store.start(guid, 0, key, { address: "10.0.0.7", ports: [{ containerPort: 8080, hostPort: 61010 }] });
    const running = await call<ActualLRP>((cb) => client.getActualLrp({ processGuid: guid, index: 0 }, cb));
    expect(running).toMatchObject({ state: ActualLrpState.ACTUAL_LRP_STATE_RUNNING, address: "10.0.0.7", ports: [{ containerPort: 8080, hostPort: 61010 }] });
    const stop = await firstMessage(subjects.lrpStop("cell-g"), () => call((cb) => client.killActualLrp({ processGuid: guid, index: 0 }, cb)));
    expect(JSON.parse(stop)).toEqual({ process_guid: guid, index: 0, instance_guid: "ig-g0" });

    await call((cb) => client.deleteDesiredLrp({ processGuid: guid }, cb));
    const gone = await grpcError(get(guid));
    expect(gone.code).toBe(grpc.status.NOT_FOUND);
    expect(gone.details).toBe(`DesiredLRPNotFound: Desired LRP with guid '${guid}' not found`);
    expect(gone.metadata.get("diego-error-name")).toEqual(["DesiredLRPNotFound"]);
  });

  it("answers each error with its code and name", async () => {
    const guid = uniqueGuid("grpc-errors");
    await create(desired(guid));
    const dup = await grpcError(create(desired(guid)));
    expect(dup.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(dup.details).toMatch(/^DesiredLRPAlreadyExists: /);

    const invalid = await grpcError(create(DesiredLRPCreateRequest.fromPartial({ processGuid: "bad guid", rootfs: "preloaded:x" })));
    expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalid.details).toBe("InvalidLRP: Invalid field: domain, Invalid field: process_guid, invalid action type");

    const badUpdate = await grpcError(call((cb) => client.updateDesiredLrp({ processGuid: guid, update: { instances: -1 } }, cb)));
    expect(badUpdate.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(badUpdate.details).toBe("InvalidLRP: Invalid field: instances");
    const noUpdate = await grpcError(call((cb) => client.updateDesiredLrp({ processGuid: guid, update: undefined }, cb)));
    expect(noUpdate.code).toBe(grpc.status.INVALID_ARGUMENT);

    const missing = await grpcError(call((cb) => client.getActualLrp({ processGuid: guid, index: 9 }, cb)));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.details).toMatch(/^ActualLRPIndexNotFound: /);
    const negative = await grpcError(call((cb) => client.killActualLrp({ processGuid: guid, index: -1 }, cb)));
    expect(negative.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(negative.details).toBe("InvalidRequest: Invalid field: index");

    const domain = await grpcError(call((cb) => client.upsertDomain({ domain: "", ttlSeconds: 0, expiresAt: 0n }, cb)));
    expect(domain.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("upserts and lists fresh domains", async () => {
    const domain = uniqueGuid("grpc-domain");
    await call((cb) => client.upsertDomain({ domain, ttlSeconds: 60, expiresAt: 0n }, cb));
    const { domains } = await call<{ domains: string[] }>((cb) => client.listDomains({}, cb));
    expect(domains).toContain(domain);
  });

  it("streams the 2015 events of one domain with WatchLRPs", async () => {
    const domain = uniqueGuid("grpc-watch");
    const stream = client.watchLrPs({ domain });
    const events: WatchLRPsResponse[] = [];
    let wake: (() => void) | undefined;
    stream.on("data", (e: WatchLRPsResponse) => {
      events.push(e);
      wake?.();
    });
    stream.on("error", () => undefined); // the cancel at the end
    const until = async (ok: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`no ${what}; got ${events.length} events`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 200);
        });
      }
    };
    try {
      // The stream subscribes once the call reaches the server: desire LRPs until one is seen.
      for (let i = 0; events.length === 0; i++) {
        await create(desired(`${domain}-warm-${i}`, domain, 0));
        await until(() => events.length > 0, "warm-up event").catch(() => undefined);
      }
      const guid = `${domain}-main`;
      const mine = () => events.filter((e) => JSON.stringify(e, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)).includes(guid));
      await create(desired(guid, domain, 1));
      await until(() => mine().some((e) => e.actualLrpCreated), "actual_lrp_created");
      await call((cb) => client.deleteDesiredLrp({ processGuid: guid }, cb));
      await until(() => mine().some((e) => e.actualLrpRemoved), "actual_lrp_removed");
      const kinds = mine().map((e) => Object.keys(e).find((k) => e[k as keyof WatchLRPsResponse] !== undefined));
      expect(kinds).toEqual(["desiredLrpCreated", "actualLrpCreated", "desiredLrpRemoved", "actualLrpRemoved"]);
      expect(mine()[0]!.desiredLrpCreated!.desiredLrp).toMatchObject({ processGuid: guid, domain });
      expect(mine()[1]!.actualLrpCreated!.actualLrp).toMatchObject({ processGuid: guid, index: 0, state: ActualLrpState.ACTUAL_LRP_STATE_UNCLAIMED });
    } finally {
      stream.cancel();
    }
  });
});

describe("LRPService over Connect JSON", () => {
  const connect = (method: string, body: unknown) =>
    fetch(`${receptor.url}/diego.v1.LRPService/${method}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  it("creates and reads a desired LRP, and names a missing one", async () => {
    const guid = uniqueGuid("connect-lrp");
    const created = await connect("CreateDesiredLRP", {
      processGuid: guid,
      domain: "lrp-connect",
      rootfs: "preloaded:cflinuxfs2",
      instances: 1,
      action: { run: { path: "/bin/sleep", args: ["100"] } },
    });
    expect(created.status).toBe(200);
    const got = await connect("GetDesiredLRP", { processGuid: guid });
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ processGuid: guid, domain: "lrp-connect", instances: 1, modificationTag: { epoch: expect.any(String) } });
    const acts = (await (await connect("ListActualLRPs", { processGuid: guid })).json()) as { actualLrps: { index?: number; state: string }[] };
    expect(acts.actualLrps).toEqual([expect.objectContaining({ state: "ACTUAL_LRP_STATE_UNCLAIMED" })]);

    const missing = await connect("GetDesiredLRP", { processGuid: "no-such-lrp" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ code: "not_found", message: "DesiredLRPNotFound: Desired LRP with guid 'no-such-lrp' not found" });
  });
});
