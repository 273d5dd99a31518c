import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActualLrpState, DesiredLRPUpdateRequestSchema, type DesiredLRPCreateRequest } from "../../src/gen/diego/v1/lrp_pb.js";
import { decodeDesiredLRPCreateRequest, decodeDesiredLRPUpdateRequest } from "../../src/model/lrp-json.js";
import { ActualLRPTransitionError } from "../../src/model/lrp-transitions.js";
import { openLrpBuckets } from "../../src/nats/buckets.js";
import { connectNats } from "../../src/nats/index.js";
import { nowNanos } from "../../src/store/clock.js";
import { ActualLRPNotFoundError, DesiredLRPExistsError, DesiredLRPNotFoundError } from "../../src/store/lrp-errors.js";
import { createLrpStore, type LrpStore } from "../../src/store/lrp-store.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// The LRP store against a real nats-server: every transition a compare-and-swap on the record,
// so two cells racing for one index never both win.

let nats: TestNats;
const conns: NatsConnection[] = [];
const stores: LrpStore[] = [];
let store: LrpStore;
let otherStore: LrpStore;
let clockOffset = 0n;
const clock = (): bigint => nowNanos() + clockOffset;

async function openStore(name: string): Promise<LrpStore> {
  const nc = await connectNats({ url: nats.url, name });
  conns.push(nc);
  const s = createLrpStore(nc, await openLrpBuckets(nc), { now: clock, crashPolicy: { immediateRestarts: 3, minBackoffMs: 1_000, maxBackoffMs: 16_000, maxRestarts: 200, resetAfterMs: 10_000 } });
  stores.push(s);
  return s;
}

beforeAll(async () => {
  nats = await startNats();
  store = await openStore("lrp-store-a");
  otherStore = await openStore("lrp-store-b");
});

afterAll(async () => {
  for (const s of stores) s.close();
  for (const nc of conns) await nc.drain().catch(() => undefined);
  await nats?.dispose();
});

let guidCount = 0;
function lrp(instances: number, domain = "d1"): DesiredLRPCreateRequest {
  return decodeDesiredLRPCreateRequest({
    process_guid: `proc-${++guidCount}`,
    domain,
    rootfs: "preloaded:cflinuxfs2",
    instances,
    action: { run: { path: "/bin/sleep", args: ["100"] } },
    ports: [8080],
  });
}

const cellA = { cellId: "cell-a", instanceGuid: "ig-a" };
const cellB = { cellId: "cell-b", instanceGuid: "ig-b" };
const net = { address: "10.0.0.5", ports: [{ containerPort: 8080, hostPort: 61001 }] };

describe("DesiredLRPs", () => {
  it("desire stores the LRP with a new tag and one UNCLAIMED instance per index; a second desire of the guid is refused", async () => {
    const req = lrp(3);
    const { desired, created } = await store.desire(req);
    expect(desired.modificationTag?.index).toBe(0);
    expect(desired.modificationTag?.epoch).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.map((a) => a.index).sort()).toEqual([0, 1, 2]);
    const actuals = await store.listActuals({ processGuid: req.processGuid });
    expect(actuals.map((a) => [a.index, a.state, a.crashCount]).sort()).toEqual([
      [0, ActualLrpState.UNCLAIMED, 0],
      [1, ActualLrpState.UNCLAIMED, 0],
      [2, ActualLrpState.UNCLAIMED, 0],
    ]);
    // Each instance record is its own: its own epoch.
    expect(new Set(actuals.map((a) => a.modificationTag?.epoch)).size).toBe(3);
    await expect(otherStore.desire(req)).rejects.toBeInstanceOf(DesiredLRPExistsError);
    expect((await store.getDesired(req.processGuid))?.value.instances).toBe(3);
  });

  it("refuses a DesiredLRP too large for NATS to take through its updates, naming the sizes", async () => {
    const req = lrp(1);
    req.env = Array.from({ length: 70 }, (_, i) => ({ $typeName: "diego.v1.EnvironmentVariable" as const, name: `V${i}`, value: "x".repeat(15_000) }));
    await expect(store.desire(req)).rejects.toThrow(/^the desired LRP is \d+ bytes when stored, over the \d+-byte limit/);
    expect(await store.getDesired(req.processGuid)).toBeUndefined();
  });

  it("two clients desiring one guid at once: exactly one stores it", async () => {
    const req = lrp(2);
    const results = await Promise.allSettled([store.desire(req), otherStore.desire(req)]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason).toBeInstanceOf(DesiredLRPExistsError);
    expect(await store.listActuals({ processGuid: req.processGuid })).toHaveLength(2);
  });

  it("concurrent updates are all applied, each raising the tag's index once", async () => {
    const req = lrp(0);
    await store.desire(req);
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? store : otherStore).updateDesired(req.processGuid, decodeDesiredLRPUpdateRequest({ annotation: `a${i}` }))));
    expect((await store.getDesired(req.processGuid))?.value.modificationTag?.index).toBe(10);
  });

  it("lists DesiredLRPs, all or of one domain", async () => {
    const [a, b] = [lrp(0, "list-x"), lrp(0, "list-y")];
    await store.desire(a);
    await store.desire(b);
    const inX = await store.listDesired("list-x");
    expect(inX.map((d) => d.processGuid)).toEqual([a.processGuid]);
    const all = (await store.listDesired()).map((d) => d.processGuid);
    expect(all).toEqual(expect.arrayContaining([a.processGuid, b.processGuid]));
  });

  it("an update raises the tag's index (even an empty one), replaces routes, and scales up and down", async () => {
    const req = lrp(2);
    const { desired } = await store.desire(req);
    const empty = await store.updateDesired(req.processGuid, create(DesiredLRPUpdateRequestSchema, {}));
    expect(empty.after?.modificationTag).toEqual(expect.objectContaining({ epoch: desired.modificationTag?.epoch, index: 1 }));

    const up = await store.updateDesired(req.processGuid, decodeDesiredLRPUpdateRequest({ instances: 4, routes: { "cf-router": [{ hostnames: ["a.example.com"], port: 8080 }] }, annotation: "v2" }));
    expect(up.after?.instances).toBe(4);
    expect(up.after?.annotation).toBe("v2");
    expect(up.after?.routes?.entries["cf-router"]).toBe('[{"hostnames":["a.example.com"],"port":8080}]');
    expect(up.created.map((a) => a.index).sort()).toEqual([2, 3]);

    // Index 0 runs on a cell, 1..3 are UNCLAIMED: scaling to 1 removes 1..3 at once.
    await store.claim(req.processGuid, 0, cellA);
    await store.start(req.processGuid, 0, cellA, net);
    const down = await store.updateDesired(req.processGuid, decodeDesiredLRPUpdateRequest({ instances: 1, routes: {} }));
    expect(down.after?.routes).toBeUndefined();
    expect(down.removed.map((a) => a.index).sort()).toEqual([1, 2, 3]);
    expect(down.stops).toEqual([]);
    expect((await store.listActuals({ processGuid: req.processGuid })).map((a) => a.index)).toEqual([0]);

    // Scaling to 0 must have cell-a stop the RUNNING index 0.
    const zero = await store.updateDesired(req.processGuid, decodeDesiredLRPUpdateRequest({ instances: 0 }));
    expect(zero.stops).toEqual([{ processGuid: req.processGuid, index: 0, cellId: "cell-a", instanceGuid: "ig-a" }]);
    expect(zero.after?.modificationTag?.index).toBe(4);
    await expect(store.updateDesired("no-such-guid", create(DesiredLRPUpdateRequestSchema, {}))).rejects.toBeInstanceOf(DesiredLRPNotFoundError);
  });

  it("removing a DesiredLRP removes its idle instances and names the cells that must stop the others", async () => {
    const req = lrp(3);
    await store.desire(req);
    await store.claim(req.processGuid, 1, cellB);
    const { desired, removed, stops } = await store.removeDesired(req.processGuid);
    expect(desired.processGuid).toBe(req.processGuid);
    expect(removed.map((a) => a.index).sort()).toEqual([0, 2]);
    expect(stops).toEqual([{ processGuid: req.processGuid, index: 1, cellId: "cell-b", instanceGuid: "ig-b" }]);
    expect(await store.getDesired(req.processGuid)).toBeUndefined();
    // The cell stops its container and removes its own record.
    await store.remove(req.processGuid, 1, cellB);
    expect(await store.listActuals({ processGuid: req.processGuid })).toEqual([]);
    await expect(store.removeDesired(req.processGuid)).rejects.toBeInstanceOf(DesiredLRPNotFoundError);
    // The guid can be desired again.
    await expect(store.desire(req)).resolves.toBeDefined();
  });
});

describe("ActualLRP transitions", () => {
  it("two cells claiming the same indices at once: exactly one wins each, and the record names it", async () => {
    const req = lrp(20);
    await store.desire(req);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        Promise.allSettled([store.claim(req.processGuid, i, { cellId: "cell-a", instanceGuid: `a-${i}` }), otherStore.claim(req.processGuid, i, { cellId: "cell-b", instanceGuid: `b-${i}` })]),
      ),
    );
    for (const [i, [a, b]] of results.entries()) {
      const won = [a, b].filter((r) => r.status === "fulfilled");
      const lost = [a, b].filter((r) => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ActualLRPTransitionError);
      const record = (await store.getActual(req.processGuid, i))!.value;
      const winner = a.status === "fulfilled" ? "cell-a" : "cell-b";
      expect(record.state).toBe(ActualLrpState.CLAIMED);
      expect(record.cellId).toBe(winner);
      expect(record.modificationTag?.index).toBe(1);
    }
  });

  it("claim, start, crash: immediate restarts keep the epoch and raise the index; the third crash backs off", async () => {
    const req = lrp(1);
    await store.desire(req);
    const g = req.processGuid;
    const epoch = (await store.getActual(g, 0))!.value.modificationTag!.epoch;
    let lastIndex = 0;
    for (let n = 1; n <= 3; n++) {
      const key = { cellId: "cell-a", instanceGuid: `run-${n}` };
      await store.claim(g, 0, key);
      const started = await store.start(g, 0, key, net);
      expect(started.after).toMatchObject({ state: ActualLrpState.RUNNING, address: "10.0.0.5", cellId: "cell-a" });
      const crashed = await store.crash(g, 0, key, `Exited with status ${n}`);
      expect(crashed.after).toMatchObject({ crashCount: n, crashReason: `Exited with status ${n}`, cellId: "", instanceGuid: "", address: "" });
      expect(crashed.after!.state).toBe(n < 3 ? ActualLrpState.UNCLAIMED : ActualLrpState.CRASHED);
      expect(crashed.after!.modificationTag!.epoch).toBe(epoch);
      expect(crashed.after!.modificationTag!.index).toBeGreaterThan(lastIndex);
      lastIndex = crashed.after!.modificationTag!.index;
    }
    // A crash report for a container no longer holding the index is refused.
    await expect(store.crash(g, 0, { cellId: "cell-a", instanceGuid: "run-3" }, "late")).rejects.toThrow("cannot crash actual LRP");
    // The backoff over, convergence unclaims it; a new cell runs it.
    const unclaimed = await store.unclaim(g, 0);
    expect(unclaimed.after).toMatchObject({ state: ActualLrpState.UNCLAIMED, crashCount: 3 });
  });

  it("a placement failure is kept on the UNCLAIMED instance and cleared by a claim", async () => {
    const req = lrp(1);
    await store.desire(req);
    const failed = await store.failPlacement(req.processGuid, 0, "insufficient resources");
    expect(failed.after?.placementError).toBe("insufficient resources");
    const claimed = await store.claim(req.processGuid, 0, cellA);
    expect(claimed.after?.placementError).toBe("");
    await expect(store.failPlacement(req.processGuid, 0, "too late")).rejects.toThrow("cannot fail actual LRP");
  });

  it("retire (kill) removes an idle or CRASHED instance at once; a new one starts from a fresh record", async () => {
    const req = lrp(1);
    await store.desire(req);
    const before = (await store.getActual(req.processGuid, 0))!.value;
    const { removed, stops } = await store.retire(req.processGuid, 0);
    expect(removed).toHaveLength(1);
    expect(stops).toEqual([]);
    expect(await store.getActual(req.processGuid, 0)).toBeUndefined();
    await expect(store.retire(req.processGuid, 0)).rejects.toBeInstanceOf(ActualLRPNotFoundError);
    const again = await store.createActual({ processGuid: req.processGuid, index: 0, domain: req.domain });
    expect(again.modificationTag?.epoch).not.toBe(before.modificationTag?.epoch);
    expect(again.crashCount).toBe(0);
  });

  it("a cell removes only a record its own instance holds", async () => {
    const req = lrp(1);
    await store.desire(req);
    await store.claim(req.processGuid, 0, cellA);
    await expect(store.remove(req.processGuid, 0, cellB)).rejects.toThrow("cannot remove actual LRP");
    await store.remove(req.processGuid, 0, cellA);
    expect(await store.getActual(req.processGuid, 0)).toBeUndefined();
  });

  it("evacuation keeps a RUNNING copy shown until the replacement runs elsewhere", async () => {
    const req = lrp(1);
    await store.desire(req);
    const g = req.processGuid;
    await store.claim(g, 0, cellA);
    await store.start(g, 0, cellA, net);
    const { instance, evacuating } = await store.evacuate(g, 0, cellA);
    expect(instance.after).toMatchObject({ state: ActualLrpState.UNCLAIMED, cellId: "" });
    expect(evacuating).toMatchObject({ state: ActualLrpState.RUNNING, cellId: "cell-a", evacuating: true, address: "10.0.0.5" });
    // The API shows the copy while the instance is UNCLAIMED or CLAIMED...
    expect(await store.listResolved({ processGuid: g })).toEqual([expect.objectContaining({ evacuating: true, cellId: "cell-a" })]);
    await store.claim(g, 0, cellB);
    expect(await store.listResolved({ processGuid: g })).toEqual([expect.objectContaining({ evacuating: true, cellId: "cell-a" })]);
    // ...and the replacement once it runs.
    await store.start(g, 0, cellB, { address: "10.0.0.6", ports: [{ containerPort: 8080, hostPort: 61005 }] });
    expect(await store.listResolved({ processGuid: g })).toEqual([expect.objectContaining({ evacuating: false, cellId: "cell-b", state: ActualLrpState.RUNNING })]);
    // Only the evacuating instance's own cell drops the copy.
    await expect(store.removeEvacuating(g, 0, cellB)).rejects.toThrow("cannot remove actual LRP");
    expect(await store.removeEvacuating(g, 0, cellA)).toMatchObject({ evacuating: true });
    expect(await store.listEvacuating({ processGuid: g })).toEqual([]);
  });
});

describe("evacuating twice", () => {
  it("a later evacuation's copy replaces an earlier one: the copy is always the instance that serves now", async () => {
    const req = lrp(1);
    await store.desire(req);
    const g = req.processGuid;
    await store.claim(g, 0, cellA);
    await store.start(g, 0, cellA, net);
    await store.evacuate(g, 0, cellA);
    // Evacuating again is refused: the instance is no longer cell-a's.
    await expect(store.evacuate(g, 0, cellA)).rejects.toThrow("cannot evacuate actual LRP");
    await store.claim(g, 0, cellB);
    await store.start(g, 0, cellB, { address: "10.0.0.6", ports: [] });
    const second = await otherStore.evacuate(g, 0, cellB);
    expect(second.evacuating).toMatchObject({ cellId: "cell-b", evacuating: true });
    expect(await store.listEvacuating({ processGuid: g })).toEqual([expect.objectContaining({ cellId: "cell-b" })]);
    // cell-a finds its copy gone (replaced) and may not remove cell-b's.
    await expect(store.removeEvacuating(g, 0, cellA)).rejects.toThrow("cannot remove actual LRP");
  });
});

describe("domains", () => {
  it("a domain is fresh for its TTL, or for ever without one", async () => {
    await store.upsertDomain("fresh-forever", 0);
    await store.upsertDomain("fresh-briefly", 2);
    expect(await store.freshDomains()).toEqual(expect.arrayContaining(["fresh-forever", "fresh-briefly"]));
    clockOffset = 3_000_000_000n;
    try {
      const fresh = await store.freshDomains();
      expect(fresh).toContain("fresh-forever");
      expect(fresh).not.toContain("fresh-briefly");
      // Re-marking makes it fresh again.
      await store.upsertDomain("fresh-briefly", 2);
      expect(await store.freshDomains()).toContain("fresh-briefly");
    } finally {
      clockOffset = 0n;
    }
  });
});
