import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActualLrpState, type WatchLRPsResponse } from "../../src/gen/diego/v1/lrp_pb.js";
import { decodeDesiredLRPCreateRequest, decodeDesiredLRPUpdateRequest, lrpEventToSse } from "../../src/model/lrp-json.js";
import { stateName } from "../../src/model/lrp-transitions.js";
import { openLrpBuckets } from "../../src/nats/buckets.js";
import { connectNats } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/lrp-store.js";
import { lrpEventDomain, startLrpWatch, type LrpWatch } from "../../src/store/lrp-watch.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// The 2015 LRP events from the buckets' changes, against a real nats-server.

let nats: TestNats;
let nc: NatsConnection;
let store: LrpStore;
let watch: LrpWatch | undefined;

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "lrp-watch-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
});

afterAll(async () => {
  watch?.stop();
  store?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

const request = (guid: string, instances: number) =>
  decodeDesiredLRPCreateRequest({ process_guid: guid, domain: "watch-d", rootfs: "preloaded:cflinuxfs2", instances, action: { run: { path: "/bin/sleep" } } });

/** A short description of an event: its 2015 name, and the actual's state after it. */
function show(e: WatchLRPsResponse): string {
  const sse = lrpEventToSse(e)!;
  const v = e.event;
  if (v.case === "actualLrpChanged") return `${sse.name} ${stateName(v.value.actualLrpBefore!.state)}->${stateName(v.value.actualLrpAfter!.state)}`;
  if (v.case === "actualLrpCreated" || v.case === "actualLrpRemoved") return `${sse.name} ${v.value.actualLrp!.index} ${stateName(v.value.actualLrp!.state)}`;
  return sse.name;
}

/** Resolves with the events seen once `count` have come. */
function collect(w: LrpWatch, count: number): Promise<WatchLRPsResponse[]> {
  const seen: WatchLRPsResponse[] = [];
  return new Promise((resolve) => {
    const off = w.onEvent((e) => {
      seen.push(e);
      if (seen.length === count) {
        off();
        resolve(seen);
      }
    });
  });
}

describe("LRP watch", () => {
  it("loads what exists without events, then reports each change as 2015's event", async () => {
    await store.desire(request("before-watch", 1));
    watch = await startLrpWatch(await openLrpBuckets(nc));
    await watch.ready();
    expect(watch.desired().map((d) => d.processGuid)).toEqual(["before-watch"]);
    expect(watch.actuals()).toHaveLength(1);

    const lifecycle = collect(watch, 5);
    await store.desire(request("p1", 1));
    const key = { cellId: "cell-1", instanceGuid: "ig-1" };
    await store.claim("p1", 0, key);
    await store.start("p1", 0, key, { address: "10.0.0.1", ports: [] });
    await store.updateDesired("p1", decodeDesiredLRPUpdateRequest({ annotation: "v2" }));
    const events = (await lifecycle).map(show);
    // Each bucket's events in order; the two buckets may interleave.
    expect(events.filter((e) => e.startsWith("desired"))).toEqual(["desired_lrp_created", "desired_lrp_changed"]);
    expect(events.filter((e) => e.startsWith("actual"))).toEqual(["actual_lrp_created 0 UNCLAIMED", "actual_lrp_changed UNCLAIMED->CLAIMED", "actual_lrp_changed CLAIMED->RUNNING"]);

    const crash = collect(watch, 1);
    await store.crash("p1", 0, key, "Exited with status 17");
    const [crashed] = await crash;
    expect(show(crashed!)).toBe("actual_lrp_changed RUNNING->UNCLAIMED");
    expect(crashed!.event.case === "actualLrpChanged" && crashed!.event.value.actualLrpAfter).toMatchObject({ crashCount: 1, crashReason: "Exited with status 17" });
    expect(lrpEventDomain(crashed!)).toBe("watch-d");

    const removal = collect(watch, 2);
    await store.removeDesired("p1");
    expect((await removal).map(show).sort()).toEqual(["actual_lrp_removed 0 UNCLAIMED", "desired_lrp_removed"]);
    expect(watch.desired().map((d) => d.processGuid)).toEqual(["before-watch"]);
    expect(watch.actuals().map((a) => [a.processGuid, a.state])).toEqual([["before-watch", ActualLrpState.UNCLAIMED]]);
  });

  it("on buckets that have never been written, is ready at once and reports the first change", async () => {
    const empty = await startNats();
    const nc2 = await connectNats({ url: empty.url, name: "lrp-watch-empty" });
    try {
      const buckets = await openLrpBuckets(nc2);
      const w = await startLrpWatch(buckets);
      try {
        await w.ready();
        expect(w.desired()).toEqual([]);
        const first = collect(w, 2);
        const s2 = createLrpStore(nc2, buckets);
        await s2.desire(request("first", 1));
        expect((await first).map(show).sort()).toEqual(["actual_lrp_created 0 UNCLAIMED", "desired_lrp_created"]);
        s2.close();
      } finally {
        w.stop();
      }
    } finally {
      await nc2.drain().catch(() => undefined);
      await empty.dispose();
    }
  });
});
