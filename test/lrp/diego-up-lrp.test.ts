import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ActualLrpState, DesiredLRPCreateRequestSchema, type ActualLRP } from "../../src/gen/diego/v1/lrp_pb.js";
import { connectNats, openLrpBuckets, subjects, type LrpBuckets } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { startTestHost, type TestHost } from "../network/test-host.js";
import { sh } from "./lrp-fixture.js";

// `diego up` runs LRPs out of the box: an LRP desired in its store is placed by its auctioneer
// and served by its cell (2015 monitor intervals and all), reached at the published host ports.

let host: TestHost;
let dataDir: string;
let up: DiegoProcess | undefined;
let nc: NatsConnection;
let buckets: LrpBuckets;
let store: LrpStore;

beforeAll(async () => {
  host = await startTestHost(1);
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-up-lrp-"));
  up = await spawnDiego([
    "up",
    "--data-dir", dataDir,
    "--nats-port", "0",
    "--listen", "127.0.0.1:0",
    "--cell-address", host.hostAddress,
    "--host-ports", "61600-61699",
  ]);
  const natsUrl = /(nats:\/\/127\.0\.0\.1:\d+)/.exec(up.readyLine)![1]!;
  nc = await connectNats({ url: natsUrl, name: "up-lrp-test", auth: { credsFile: path.join(dataDir, "nats", "credentials") } });
  buckets = await openLrpBuckets(nc);
  store = createLrpStore(nc, buckets);
}, 120_000);

afterAll(async () => {
  store?.close();
  await nc?.drain().catch(() => undefined);
  await up?.kill("SIGTERM");
  host?.stop();
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

it("places and runs a desired LRP of 2 httpd instances; each page is served through its host port", async () => {
  const processGuid = "up-web";
  await store.desire(
    create(DesiredLRPCreateRequestSchema, {
      processGuid,
      domain: "test",
      rootfs: "preloaded:lucid64",
      instances: 2,
      setup: sh('mkdir -p /www && echo "up instance $INSTANCE_INDEX" > /www/index.html'),
      action: sh("exec httpd -f -p 8080 -h /www"),
      monitor: sh("timeout 1 wget -q -O /dev/null http://127.0.0.1:8080/"),
      ports: [8080],
      memoryMb: 32,
    }),
  );
  nc.publish(subjects.auctionKick, "");
  const watch = await buckets.actual.watch({ key: `${processGuid}.*` });
  const timer = setTimeout(() => watch.stop(), 45_000);
  let running: ActualLRP[] = [];
  for await (const _ of watch) {
    running = (await store.listActuals({ processGuid })).filter((a) => a.state === ActualLrpState.RUNNING);
    if (running.length === 2) break;
  }
  clearTimeout(timer);
  watch.stop();
  expect(running.map((a) => a.index).sort()).toEqual([0, 1]);
  for (const a of running) {
    expect(a.address).toBe(host.hostAddress);
    const res = await fetch(`http://${a.address}:${a.ports[0]!.hostPort}/`, { signal: AbortSignal.timeout(2000) });
    expect(await res.text()).toBe(`up instance ${a.index}\n`);
  }
}, 90_000);
