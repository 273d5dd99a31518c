import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeDesiredLRPCreateRequest } from "../../src/model/lrp-json.js";
import { connectNats, openLrpBuckets } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// Listings of the LRP buckets while a record is being rewritten as fast as one writer can: a
// cell crash-looping an instance while the converger or an API client lists. nats.js's kv.keys()
// can miss the end of such a listing and wait ~30 s for an idle heartbeat; the store must not.

let nats: TestNats;
let nc: NatsConnection;
let store: LrpStore;

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "lrp-listing-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
});
afterAll(async () => {
  store?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

describe("listing LRP records under concurrent writes", () => {
  it("answers every listing promptly and completely while an instance is rewritten in a loop", async () => {
    for (const guid of ["hot", "cold-a", "cold-b"]) {
      await store.desire(decodeDesiredLRPCreateRequest({ process_guid: guid, domain: "d", rootfs: "preloaded:cflinuxfs2", instances: 2, action: { run: { path: "/bin/sleep" } } }));
    }
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        const key = { cellId: "cell-a", instanceGuid: `hot-${n}` };
        await store.claim("hot", 0, key);
        await store.crash("hot", 0, key, "Exited with status 1");
      }
    })();
    try {
      for (let i = 0; i < 30; i++) {
        const started = Date.now();
        const [actuals, desired] = await Promise.all([store.listActuals(), store.listDesired()]);
        expect(Date.now() - started, `listing ${i}`).toBeLessThan(3_000);
        expect(actuals.map((a) => `${a.processGuid}.${a.index}`).sort()).toEqual(["cold-a.0", "cold-a.1", "cold-b.0", "cold-b.1", "hot.0", "hot.1"]);
        expect(desired.map((d) => d.processGuid).sort()).toEqual(["cold-a", "cold-b", "hot"]);
      }
    } finally {
      writing = false;
      await writer;
    }
  }, 120_000);
});
