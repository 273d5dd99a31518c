import http from "node:http";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLoad } from "../../bench/load.js";
import { LRPServiceClient, type WatchLRPsResponse } from "../../src/gen/grpc-js/diego/v1/lrp.js";
import { decodeDesiredLRPCreateRequest } from "../../src/model/index.js";
import { connectNats, openLrpBuckets } from "../../src/nats/index.js";
import type { Receptor } from "../../src/receptor/start-receptor.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";

// LRP event streams whose reader stops reading end as task streams do: WatchLRPs with
// RESOURCE_EXHAUSTED StreamTooSlow, /v1/events with an `error` event; the receptor goes on.

const STREAM_BACKLOG = 50;
const MESSAGES = 2000;

let nats: TestNats;
let receptor: Receptor;
let client: LRPServiceClient;
let nc: Awaited<ReturnType<typeof connectNats>>;
let store: LrpStore;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url, { streamBacklog: STREAM_BACKLOG });
  client = new LRPServiceClient(`127.0.0.1:${receptor.port}`, grpc.credentials.createInsecure());
  nc = await connectNats({ url: nats.url, name: "lrp-stall-writer" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
});
afterAll(async () => {
  client?.close();
  store?.close();
  await nc?.close();
  await receptor?.stop();
  await nats?.dispose();
});

/** About 9 KB each, no instances: enough to fill the connection's windows and then the backlog. */
const desire = (domain: string, i: number) =>
  store.desire(
    decodeDesiredLRPCreateRequest({ process_guid: `${domain}-${i}`, domain, rootfs: "preloaded:s", instances: 0, action: { run: { path: "/x" } }, annotation: "a".repeat(9000) }),
  );

describe("LRP event streams whose reader stops reading", () => {
  it("WatchLRPs ends with RESOURCE_EXHAUSTED (StreamTooSlow)", async () => {
    const domain = "grpc-lrp-stalled";
    const stream = client.watchLrPs({ domain });
    let received = 0;
    let error: grpc.ServiceError | undefined;
    stream.on("error", (e: grpc.ServiceError) => (error = e));
    const outcome = new Promise<void>((resolve) => stream.on("status", () => resolve()));
    // Changes go nowhere until the receptor watches: make one now and then until one arrives.
    let pokes = 0;
    const timer = setInterval(() => void desire(domain, -++pokes), 50);
    await new Promise<void>((resolve) =>
      stream.once("data", () => {
        received++;
        clearInterval(timer);
        stream.pause();
        resolve();
      }),
    );
    const created = await runLoad(MESSAGES, 50, (i) => desire(domain, i));
    expect(created.errors).toBe(0);
    stream.on("data", (_e: WatchLRPsResponse) => received++);
    stream.resume();
    await outcome;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toBe(`StreamTooSlow: the reader fell more than ${STREAM_BACKLOG} messages behind; reconnect to go on`);
    expect(received).toBeLessThan(MESSAGES);
    // Still serving.
    await new Promise<void>((resolve, reject) => client.listDomains({}, (err) => (err ? reject(err) : resolve())));
  });

  it("/v1/events ends with an error event naming StreamTooSlow", async () => {
    const domain = "sse-lrp-stalled";
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${receptor.port}/v1/events?domain=${domain}`, (res) => {
          res.setEncoding("utf8");
          let text = "";
          let stalled = false;
          res.on("data", (chunk: string) => {
            text += chunk;
            if (stalled) return;
            // The stream is open (": connected"): stop reading while 2,000 changes are made.
            stalled = true;
            res.pause();
            runLoad(MESSAGES, 50, (i) => desire(domain, i)).then(() => res.resume(), reject);
          });
          res.on("end", () => resolve(text));
        })
        .on("error", reject);
    });
    const frames = body.split("\n\n");
    expect(frames.filter((f) => f.includes("event: desired_lrp_created")).length).toBeLessThan(MESSAGES);
    const last = frames.filter((f) => f.trim() !== "").at(-1)!;
    expect(last).toContain("event: error");
    expect(JSON.parse(last.split("data: ")[1]!)).toEqual({ name: "StreamTooSlow", message: `the reader fell more than ${STREAM_BACKLOG} messages behind; reconnect to go on` });
  });
});
