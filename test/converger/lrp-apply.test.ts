import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyLrpActions, type LrpJudgeContext } from "../../src/converger/lrp-apply.js";
import { DEFAULT_LRP_CONVERGE_SETTINGS, decideLrps } from "../../src/converger/lrp-decide.js";
import { ActualLrpState } from "../../src/gen/diego/v1/lrp_pb.js";
import { decodeDesiredLRPCreateRequest } from "../../src/model/lrp-json.js";
import { stateName } from "../../src/model/lrp-transitions.js";
import { openLrpBuckets } from "../../src/nats/buckets.js";
import { connectNats } from "../../src/nats/index.js";
import { nowNanos } from "../../src/store/clock.js";
import { createLrpStore, type LrpStore } from "../../src/store/lrp-store.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// A convergence pass's LRP actions carried out against a real store: each record judged again
// inside its compare-and-swap, so one that moved on after the pass read it is left alone.

let nats: TestNats;
let nc: NatsConnection;
let store: LrpStore;
let offset = 0n;
const clock = (): bigint => nowNanos() + offset;

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "lrp-apply-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc), { now: clock });
});

afterAll(async () => {
  store?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

const desire = (guid: string, instances: number, domain = "fresh-d") =>
  store.desire(decodeDesiredLRPCreateRequest({ process_guid: guid, domain, rootfs: "preloaded:cflinuxfs2", instances, action: { run: { path: "/bin/sleep" } } }));

async function crashThrice(guid: string, index: number): Promise<void> {
  for (let n = 0; n < 3; n++) {
    const key = { cellId: "cell-1", instanceGuid: `${guid}-${index}-${n}` };
    await store.claim(guid, index, key);
    await store.crash(guid, index, key, "Exited with status 1");
  }
}

async function readPass(): Promise<{ ctx: LrpJudgeContext; desired: Awaited<ReturnType<LrpStore["listDesired"]>>; actions: ReturnType<typeof decideLrps> }> {
  const ctx: LrpJudgeContext = { cells: new Set(["cell-1"]), cellsTrusted: true, freshDomains: new Set(["fresh-d"]), now: clock(), settings: DEFAULT_LRP_CONVERGE_SETTINGS };
  const desired = await store.listDesired();
  const actions = decideLrps({ ...ctx, desired, actuals: await store.listActuals(), evacuating: await store.listEvacuating() });
  return { ctx, desired, actions };
}

describe("applying LRP convergence actions", () => {
  it("creates, replaces, retires and restarts, and says what to auction and which cells must stop what", async () => {
    await desire("p", 3);
    // Index 0 runs on a cell that is gone; index 1's record was removed; index 2 crashed a third time.
    await store.claim("p", 0, { cellId: "gone", instanceGuid: "ig-0" });
    await store.start("p", 0, { cellId: "gone", instanceGuid: "ig-0" }, { address: "10.0.0.9", ports: [] });
    await store.retire("p", 1);
    await crashThrice("p", 2);
    // Extras from before a scale-down: 3 runs on a live cell, 4 waits UNCLAIMED.
    await store.createActual({ processGuid: "p", index: 3, domain: "fresh-d" });
    await store.claim("p", 3, { cellId: "cell-1", instanceGuid: "ig-3" });
    await store.start("p", 3, { cellId: "cell-1", instanceGuid: "ig-3" }, { address: "10.0.0.1", ports: [] });
    await store.createActual({ processGuid: "p", index: 4, domain: "fresh-d" });
    // An instance of an LRP nobody desires any more, in a domain that is not fresh: kept.
    await store.createActual({ processGuid: "orphan", index: 0, domain: "stale-d" });

    offset = 31_000_000_000n; // the crash's 30 s backoff is over
    const { ctx, desired, actions } = await readPass();
    expect(actions.map((a) => `${a.kind} ${"actual" in a ? a.actual.index : a.index}`)).toEqual(["create 1", "replace 0", "restart 2", "retire 3", "retire 4"]);

    const result = await applyLrpActions(store, actions, desired, ctx);
    expect(result.skipped).toBe(0);
    expect([...result.auction]).toEqual([["p", expect.arrayContaining([0, 1, 2])]]);
    expect(result.auction.get("p")).toHaveLength(3);
    expect(result.stops).toEqual([{ processGuid: "p", index: 3, cellId: "cell-1", instanceGuid: "ig-3" }]);

    const after = new Map((await store.listActuals({ processGuid: "p" })).map((a) => [a.index, a]));
    expect([...after.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect(stateName(after.get(0)!.state)).toBe("UNCLAIMED");
    expect(after.get(0)!.crashCount).toBe(0); // a new record
    expect(after.get(2)).toMatchObject({ state: ActualLrpState.UNCLAIMED, crashCount: 3 });
    expect(after.get(3)!.state).toBe(ActualLrpState.RUNNING); // until cell-1 stops it
    expect(await store.listActuals({ processGuid: "orphan" })).toHaveLength(1);
  });

  it("leaves alone a record that moved on after the pass read it", async () => {
    offset = 0n;
    await desire("q", 2);
    await crashThrice("q", 0);
    await crashThrice("q", 1);
    offset = 62_000_000_000n;
    const { ctx, desired, actions } = await readPass();
    const forQ = actions.filter((a) => "actual" in a && a.actual.processGuid === "q");
    expect(forQ.map((a) => a.kind)).toEqual(["restart", "restart"]);
    // Meanwhile a cell claims index 0 (from CRASHED, as 2015 allowed).
    await store.claim("q", 0, { cellId: "cell-1", instanceGuid: "fast" });
    const result = await applyLrpActions(store, forQ, desired, ctx);
    expect(result.skipped).toBe(1);
    expect(result.auction.get("q")).toEqual([1]);
    expect((await store.getActual("q", 0))?.value).toMatchObject({ state: ActualLrpState.CLAIMED, instanceGuid: "fast" });
    expect((await store.getActual("q", 1))?.value.state).toBe(ActualLrpState.UNCLAIMED);
  });
});
