import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startAuctioneer, type Auctioneer } from "../../src/auction/index.js";
import { createUnclaimedLrps, type UnclaimedLrps } from "../../src/auction/unclaimed-lrps.js";
import { ActualLrpState } from "../../src/gen/diego/v1/lrp_pb.js";
import { decodeDesiredLRPCreateRequest } from "../../src/model/lrp-json.js";
import { ACTUAL_LRPS_BUCKET, connectNats, openLrpBuckets, type LrpBuckets } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startSimCells, type SimCells } from "../fixtures/sim-cells.js";

// The auctioneer's UNCLAIMED instances come from a watch on the actual-LRP bucket, not from a
// listing of every record per scan; a listing is the backstop for a watch that lost something.
// Real nats-server, records written through the real store.

let nats: TestNats;
let nc: NatsConnection;
let buckets: LrpBuckets;
let store: LrpStore;
let listings = 0;

const desire = (guid: string, instances: number) =>
  store.desire(decodeDesiredLRPCreateRequest({ process_guid: guid, domain: "d", rootfs: "preloaded:lucid64", instances, memory_mb: 8, action: { run: { path: "/bin/sleep" } } }));

const keys = (lrps: Array<{ processGuid: string; index: number }>): string[] => lrps.map((l) => `${l.processGuid}.${l.index}`).sort();

/** Resolves at the next onUnclaimed call. */
function signal(): { next(): Promise<void>; fire(): void } {
  let waiters: Array<() => void> = [];
  return {
    next: () => new Promise<void>((r) => waiters.push(r)),
    fire() {
      const w = waiters;
      waiters = [];
      for (const r of w) r();
    },
  };
}

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "unclaimed-lrps-test" });
  buckets = await openLrpBuckets(nc);
  const real = createLrpStore(nc, buckets);
  // The real store, counting how often the intake lists it.
  store = { ...real, listActuals: (f) => (listings++, real.listActuals(f)) };
});
afterAll(async () => {
  store?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

describe("the auction's index of UNCLAIMED instances", () => {
  let intake: UnclaimedLrps;
  const unclaimed = signal();
  afterAll(() => intake?.stop());

  it("sees new UNCLAIMED instances through the watch, without listing the store, and drops claimed ones", async () => {
    intake = await createUnclaimedLrps(buckets, store, { nc, onUnclaimed: () => unclaimed.fire() });
    await intake.ready();
    const arrived = unclaimed.next();
    await desire("web", 3);
    await arrived;
    // The creates may arrive one by one: wait until all three are in.
    while (intake.waiting() < 3) await unclaimed.next();
    expect(keys(await intake.scan())).toEqual(["web.0", "web.1", "web.2"]);
    expect((await intake.scan())[0]).toMatchObject({ rootFs: "preloaded:lucid64", memoryMb: 8 });

    await store.claim("web", 1, { cellId: "cell-a", instanceGuid: "i-1" });
    // The claim shows once the watch delivers it; a write to another record marks that moment.
    const marker = unclaimed.next();
    await desire("marker", 1);
    await marker;
    expect(keys(await intake.scan())).toEqual(["marker.0", "web.0", "web.2"]);
    expect(listings).toBe(0);
  });

  it("leaves an instance sent to a cell out of scans until the cell hands it back", async () => {
    intake.sent([{ processGuid: "web", index: 0 }]);
    expect(keys(await intake.scan())).toEqual(["marker.0", "web.2"]);
    intake.returned([{ processGuid: "web", index: 0 }]);
    expect(keys(await intake.scan())).toEqual(["marker.0", "web.0", "web.2"]);
  });

  it("finds work a lost watch never delivered with a full scan (the auctioneer's backstop)", async () => {
    // Lose the watch for good: its consumer is deleted on the server, and it is not checked
    // against the stream within this test (checkMs), so it cannot notice and recreate it.
    const lossy = await createUnclaimedLrps(buckets, store, { nc, checkMs: 600_000 });
    try {
      await lossy.ready();
      const jsm = await jetstreamManager(nc);
      const before = new Set<string>();
      for await (const c of jsm.consumers.list(`KV_${ACTUAL_LRPS_BUCKET}`)) before.add(c.name);
      expect(before.size).toBeGreaterThan(0);
      for (const name of before) await jsm.consumers.delete(`KV_${ACTUAL_LRPS_BUCKET}`, name);
      // The first intake's watch is gone too; it is stopped, so only `lossy` matters here.
      await intake.stop();

      await desire("late", 2);
      const indexed = keys(await lossy.scan());
      expect(indexed).not.toContain("late.0");
      const full = keys(await lossy.scan({ full: true }));
      expect(full).toEqual(expect.arrayContaining(["late.0", "late.1", "web.0", "web.2"]));
      expect(full).not.toContain("web.1");
      expect(listings).toBe(1);
    } finally {
      await lossy.stop();
    }
  });
});

describe("the auctioneer with simulated cells", () => {
  let sim: SimCells;
  let auctioneer: Auctioneer;

  beforeAll(async () => {
    sim = await startSimCells({ natsUrl: nats.url, count: 6, zones: 3, cellTtlMs: 10_000, prefix: "t" });
    auctioneer = await startAuctioneer({ natsUrl: nats.url, logger: pino({ level: "silent" }), cellTtlMs: 10_000, lockTtlMs: 3_000, maxPlacementAttempts: 3, retryDelayMs: 500 });
  });
  afterAll(async () => {
    await auctioneer?.stop();
    await sim?.stop();
  });

  it("places a new LRP seen only through the watch (no kick), one instance per cell across the zones", async () => {
    await desire("spread", 6);
    await vi.waitFor(
      async () => {
        const states = (await store.listActuals({ processGuid: "spread" })).map((a) => a.state);
        expect(states).toEqual(Array(6).fill(ActualLrpState.RUNNING));
      },
      { timeout: 20_000, interval: 100 },
    );
    const perCell = sim.cells.map((c) => c.counts().get("spread") ?? 0);
    expect(perCell).toEqual([1, 1, 1, 1, 1, 1]);
  });
});
