import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ActualLrpState, DesiredLRPCreateRequestSchema, type ActualLRP } from "../../src/gen/diego/v1/lrp_pb.js";
import { connectNats, openLrpBuckets, subjects, type LrpBuckets } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { startTestHost, type TestHost } from "../network/test-host.js";
import { FAST, sh } from "./lrp-fixture.js";
import { cellLayout, ociList } from "../faults/fault-support.js";

// `diego cell` as its own process. Stopped with SIGTERM as a rolling update does, its instance is
// handed to the other cell and keeps answering throughout; the process exits once the
// replacement runs, well before --evacuation-timeout. SIGKILLed and started again on its work
// dir, it removes the instance containers the killed run left.

let host: TestHost;
let cluster: TestCluster;
let nc: NatsConnection;
let buckets: LrpBuckets;
let store: LrpStore;
let cell: DiegoProcess | undefined;
let restarted: DiegoProcess | undefined;
let dataDir: string;

beforeAll(async () => {
  host = await startTestHost(1);
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-sigterm-"));
  cluster = await startCluster({ cells: [] });
  nc = await connectNats({ url: cluster.nats.url, name: "cell-sigterm-test" });
  buckets = await openLrpBuckets(nc);
  store = createLrpStore(nc, buckets);
}, 120_000);

afterAll(async () => {
  // SIGTERM, never SIGKILL: the cell then removes its containers and network itself.
  await cell?.kill("SIGTERM");
  await restarted?.kill("SIGTERM");
  store?.close();
  await nc?.drain().catch(() => undefined);
  await cluster?.stop();
  host?.stop();
  await rm(dataDir, { recursive: true, force: true });
}, 120_000);

async function waitRunning(processGuid: string, timeoutMs = 45_000): Promise<ActualLRP> {
  const a = await waitRecord(processGuid, (r) => r?.state === ActualLrpState.RUNNING, timeoutMs);
  return a!;
}

/** Waits (on the bucket's watch) until index 0's record satisfies `ok`. */
async function waitRecord(processGuid: string, ok: (a: ActualLRP | undefined) => boolean, timeoutMs = 45_000): Promise<ActualLRP | undefined> {
  const watch = await buckets.actual.watch({ key: `${processGuid}.0` });
  const timer = setTimeout(() => watch.stop(), timeoutMs);
  try {
    const first = (await store.getActual(processGuid, 0))?.value;
    if (ok(first)) return first;
    for await (const _ of watch) {
      const a = (await store.getActual(processGuid, 0))?.value;
      if (ok(a)) return a;
    }
    throw new Error(`${processGuid}/0 not as expected within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
}

const page = async (a: ActualLRP): Promise<string> =>
  (await fetch(`http://${a.address}:${a.ports[0]!.hostPort}/`, { signal: AbortSignal.timeout(2000) })).text();

it("SIGTERM drains the cell: the instance moves to the other cell and answers all along, then the process exits", async () => {
  cell = await spawnDiego(
    [
      "cell",
      "--nats", cluster.nats.url,
      "--data-dir", dataDir,
      "--cell-id", "sigterm-cell",
      "--cell-ttl", "3s",
      "--memory-mb", "2048",
      "--disk-mb", "4096",
      "--cell-address", host.hostAddress,
      "--host-ports", "61300-61399",
      "--evacuation-timeout", "30s",
    ],
  );
  const processGuid = "sigterm-web";
  await store.desire(
    create(DesiredLRPCreateRequestSchema, {
      processGuid,
      domain: "test",
      rootfs: "preloaded:lucid64",
      instances: 1,
      setup: sh('mkdir -p /www && echo "hello" > /www/index.html'),
      action: sh("exec httpd -f -p 8080 -h /www"),
      // RUNNING once it answers (2015: without a monitor it is RUNNING before httpd listens).
      monitor: sh("timeout 1 wget -q -O /dev/null http://127.0.0.1:8080/"),
      ports: [8080],
      memoryMb: 32,
    }),
  );
  nc.publish(subjects.auctionKick, "");
  const before = await waitRunning(processGuid);
  expect(before.cellId).toBe("sigterm-cell");
  expect(await page(before)).toBe("hello\n");

  const other = await cluster.addCell({ zone: "z2", network: { cellAddress: host.hostAddress, hostPorts: "61400-61499" }, lrpTiming: FAST });
  const failures: string[] = [];
  let probes = 0;
  let exited = false;
  const exit = new Promise<number | null>((resolve) => cell!.child.once("exit", (code) => resolve(code)));
  void exit.then(() => (exited = true));
  const started = Date.now();
  cell.child.kill("SIGTERM");
  while (!exited) {
    const [shown] = await store.listResolved({ processGuid });
    if (shown?.state === ActualLrpState.RUNNING) {
      probes++;
      await page(shown).then(
        (text) => text === "hello\n" || failures.push(text),
        (err: Error) => failures.push(`${shown.cellId}: ${err.message}`),
      );
    } else failures.push(`no RUNNING record (${shown ? ActualLrpState[shown.state] : "none"})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(await exit).toBe(0);
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(failures).toEqual([]);
  expect(probes).toBeGreaterThan(3);
  const after = (await store.getActual(processGuid, 0))!.value;
  expect(after.state).toBe(ActualLrpState.RUNNING);
  expect(after.cellId).toBe(other.cellId);
  expect(await page(after)).toBe("hello\n");
  expect(await store.listEvacuating({ processGuid })).toEqual([]);
}, 150_000);

it("a SIGKILLed cell restarted on its work dir removes its instance's container; a stop message then removes the record it held", async () => {
  const dir = path.join(dataDir, "restart");
  const args = [
    "cell",
    "--nats", cluster.nats.url,
    "--data-dir", dir,
    "--cell-id", "restart-cell",
    "--cell-ttl", "3s",
    // Only this cell serves the stack: the instance lands here.
    "--stacks", "lucid64,restartfs",
    "--memory-mb", "2048",
    "--disk-mb", "4096",
    "--cell-address", host.hostAddress,
    "--host-ports", "61500-61599",
    "--evacuation-timeout", "5s",
  ];
  restarted = await spawnDiego(args);
  const processGuid = "restart-web";
  await store.desire(
    create(DesiredLRPCreateRequestSchema, {
      processGuid,
      domain: "test",
      rootfs: "preloaded:restartfs",
      instances: 1,
      setup: sh('mkdir -p /www && echo "hello" > /www/index.html'),
      action: sh("exec httpd -f -p 8080 -h /www"),
      monitor: sh("timeout 1 wget -q -O /dev/null http://127.0.0.1:8080/"),
      ports: [8080],
      memoryMb: 32,
    }),
  );
  nc.publish(subjects.auctionKick, "");
  const held = await waitRunning(processGuid);
  expect(held.cellId).toBe("restart-cell");

  await restarted.kill("SIGKILL");
  const layout = cellLayout(dir, "restart-cell");
  // The killed cell's container outlives it, still serving.
  expect((await ociList(layout)).map((c) => c.id).filter((id) => id.startsWith(processGuid))).toHaveLength(1);
  expect(await page(held)).toBe("hello\n");

  restarted = await spawnDiego(args);
  expect(await ociList(layout)).toEqual([]);
  await expect(page(held)).rejects.toThrow();
  // The record still names the old instance; its stop is honoured though nothing runs it now.
  nc.publish(subjects.lrpStop("restart-cell"), JSON.stringify({ process_guid: processGuid, index: 0, instance_guid: held.instanceGuid }));
  await waitRecord(processGuid, (a) => a === undefined);
}, 150_000);
