import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActualLRPSchema, ActualLrpState, DesiredLRPCreateRequestSchema, type ActualLRP, type DesiredLRPCreateRequest } from "../../src/gen/diego/v1/lrp_pb.js";
import { connectNats, openLrpBuckets, subjects, type LrpBuckets } from "../../src/nats/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { startTestHost, type TestHost } from "../network/test-host.js";
import { FAST, sh } from "./lrp-fixture.js";

// LRPs end to end: desired through the store, placed by the real auctioneer on two real cells
// (runc, their own container networks, published ports reached at a test host's link address),
// crashes restarted, a stop message honoured, placement errors, evacuation.

let host: TestHost;
let cluster: TestCluster;
let nc: NatsConnection;
let buckets: LrpBuckets;
let store: LrpStore;

const EVACUATION_TIMEOUT_MS = 60_000;

beforeAll(async () => {
  host = await startTestHost(1);
  const cell = (zone: string, hostPorts: string) => ({
    zone,
    network: { cellAddress: host.hostAddress, hostPorts },
    lrpTiming: FAST,
    evacuationTimeoutMs: EVACUATION_TIMEOUT_MS,
  });
  cluster = await startCluster({ cells: [cell("z1", "61000-61099"), cell("z2", "61100-61199")] });
  nc = await connectNats({ url: cluster.nats.url, name: "lrp-run-test" });
  buckets = await openLrpBuckets(nc);
  store = createLrpStore(nc, buckets);
}, 120_000);

afterAll(async () => {
  store?.close();
  await nc?.drain().catch(() => undefined);
  await cluster?.stop();
  host?.stop();
}, 120_000);

const HTTPD_SETUP = sh('mkdir -p /www && echo "page of instance $INSTANCE_INDEX" > /www/index.html');
const HTTPD = sh("exec httpd -f -p 8080 -h /www");
// Debian's static busybox wget segfaults with -T: busybox timeout bounds it instead.
const HTTP_MONITOR = sh("timeout 1 wget -q -O /dev/null http://127.0.0.1:8080/");

const guid = (prefix: string): string => `${prefix}-${randomBytes(4).toString("hex")}`;

function desiredHttpd(processGuid: string, instances: number, over: Omit<MessageInitShape<typeof DesiredLRPCreateRequestSchema>, "$typeName"> = {}): DesiredLRPCreateRequest {
  return create(DesiredLRPCreateRequestSchema, {
    processGuid,
    domain: "test",
    rootfs: "preloaded:lucid64",
    instances,
    setup: HTTPD_SETUP,
    action: HTTPD,
    monitor: HTTP_MONITOR,
    ports: [8080],
    memoryMb: 32,
    diskMb: 32,
    ...over,
  });
}

/** Desires it and wakes the auctioneer, as the API does. */
async function desire(req: DesiredLRPCreateRequest): Promise<void> {
  await store.desire(req);
  nc.publish(subjects.auctionKick, "");
}

/** Re-evaluates `check` on every change of the ActualLRP bucket until it returns something. */
async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
  const watch = await buckets.actual.watch({ key: ">" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    watch.stop();
  }, timeoutMs);
  try {
    const first = await check();
    if (first !== undefined) return first;
    for await (const _ of watch) {
      const r = await check();
      if (r !== undefined) return r;
    }
    throw new Error(timedOut ? `timed out after ${timeoutMs} ms waiting for ${what}` : `watch ended waiting for ${what}`);
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
}

const allRunning = (processGuid: string, n: number) => async (): Promise<ActualLRP[] | undefined> => {
  const actuals = await store.listActuals({ processGuid });
  const running = actuals.filter((a) => a.state === ActualLrpState.RUNNING);
  return running.length === n && actuals.length === n ? running.sort((a, b) => a.index - b.index) : undefined;
};

/** Every version of one ActualLRP record, as the bucket saw them. */
async function recordHistory(processGuid: string, index: number): Promise<{ seen: ActualLRP[]; stop: () => void }> {
  const seen: ActualLRP[] = [];
  const watch = await buckets.actual.watch({ key: `${processGuid}.${index}` });
  void (async () => {
    for await (const e of watch) if (e.operation === "PUT" && e.value.length > 0) seen.push(fromBinary(ActualLRPSchema, e.value));
  })();
  return { seen, stop: () => watch.stop() };
}

async function page(a: { address: string; ports: Array<{ hostPort: number }> }): Promise<string> {
  const res = await fetch(`http://${a.address}:${a.ports[0]!.hostPort}/`, { signal: AbortSignal.timeout(2000) });
  return res.text();
}

describe("an LRP of 3 httpd instances with a monitor on two cells", () => {
  const processGuid = guid("web");
  let running: ActualLRP[] = [];

  it("runs every instance: RUNNING with distinct indices and host ports, spread over both cells, each page served", async () => {
    await desire(desiredHttpd(processGuid, 3));
    running = await waitUntil("3 RUNNING instances", allRunning(processGuid, 3));
    expect(running.map((a) => a.index)).toEqual([0, 1, 2]);
    expect(new Set(running.map((a) => a.instanceGuid)).size).toBe(3);
    for (const a of running) {
      expect(a.address).toBe(host.hostAddress);
      expect(a.ports).toHaveLength(1);
      expect(a.ports[0]!.containerPort).toBe(8080);
    }
    expect(new Set(running.map((a) => a.ports[0]!.hostPort)).size).toBe(3);
    // Spread: both cells (zones z1, z2) hold some, neither all three.
    const perCell = new Map<string, number>();
    for (const a of running) perCell.set(a.cellId, (perCell.get(a.cellId) ?? 0) + 1);
    expect([...perCell.keys()].sort()).toEqual(cluster.cells.map((c) => c.cellId).sort());
    expect([...perCell.values()].sort()).toEqual([1, 2]);
    for (const a of running) expect(await page(a)).toBe(`page of instance ${a.index}\n`);
  }, 90_000);

  it("stops an instance on a stop message: its container goes, then its record", async () => {
    const victim = running.find((a) => a.index === 2)!;
    nc.publish(subjects.lrpStop(victim.cellId), JSON.stringify({ process_guid: processGuid, index: 2, instance_guid: victim.instanceGuid }));
    await waitUntil("index 2 removed", async () => ((await store.getActual(processGuid, 2)) ? undefined : true));
    await expect(page(victim)).rejects.toThrow();
    // The others are untouched.
    for (const a of running.filter((r) => r.index !== 2)) expect(await page(a)).toBe(`page of instance ${a.index}\n`);
    const cell = cluster.cells.find((c) => c.cellId === victim.cellId)!;
    expect(cell.lrpInstances()).toBe(running.filter((a) => a.cellId === victim.cellId).length - 1);
  }, 60_000);
});

describe("a crashing instance", () => {
  it("exits 17: CRASHED reason recorded, restarted at once for crashes 1 and 2, then left CRASHED", async () => {
    const processGuid = guid("crash");
    const history = await recordHistory(processGuid, 0);
    await desire(desiredHttpd(processGuid, 1, { setup: undefined, monitor: undefined, ports: [], action: sh("sleep 0.3; exit 17") }));
    const crashed = await waitUntil("the third crash", async () => {
      const a = (await store.getActual(processGuid, 0))?.value;
      return a?.state === ActualLrpState.CRASHED ? a : undefined;
    });
    history.stop();
    expect(crashed.crashCount).toBe(3);
    expect(crashed.crashReason).toContain("17");
    const restarts = history.seen.filter((a) => a.state === ActualLrpState.UNCLAIMED && a.crashCount > 0);
    expect(restarts.map((a) => a.crashCount)).toEqual([1, 2]);
    for (const r of restarts) expect(r.crashReason).toContain("17");
    // Each run was a new instance (container) that reached RUNNING before it crashed.
    const runs = history.seen.filter((a) => a.state === ActualLrpState.RUNNING);
    expect(new Set(runs.map((a) => a.instanceGuid)).size).toBe(3);
  }, 90_000);
});

describe("an immediate restart", () => {
  it("is claimed again by the cell the instance crashed on, with no auctioneer running", async () => {
    const processGuid = guid("restart-here");
    const history = await recordHistory(processGuid, 0);
    await desire(desiredHttpd(processGuid, 1, { setup: undefined, monitor: undefined, ports: [], action: sh("sleep 2; exit 17") }));
    const first = await waitUntil("the first RUNNING", async () => {
      const a = (await store.getActual(processGuid, 0))?.value;
      return a?.state === ActualLrpState.RUNNING ? a : undefined;
    });
    // Nothing left to place the instance after its crashes but its own cell.
    const auctioneers = cluster.auctioneers.splice(0);
    await Promise.all(auctioneers.map((a) => a.stop()));
    try {
      const crashed = await waitUntil("the third crash", async () => {
        const a = (await store.getActual(processGuid, 0))?.value;
        return a?.state === ActualLrpState.CRASHED ? a : undefined;
      });
      expect(crashed.crashCount).toBe(3);
      const runs = history.seen.filter((a) => a.state === ActualLrpState.RUNNING);
      expect(new Set(runs.map((a) => a.instanceGuid)).size).toBe(3);
      expect(new Set(runs.map((a) => a.cellId))).toEqual(new Set([first.cellId]));
    } finally {
      history.stop();
      await cluster.addAuctioneer();
    }
  }, 90_000);
});

describe("an LRP no cell can take", () => {
  it("stays UNCLAIMED with the 2015 placement_error: too big, or a stack no cell has", async () => {
    const big = guid("big");
    const fruit = guid("fruit");
    await desire(desiredHttpd(big, 1, { memoryMb: 1024 * 1024 }));
    await desire(desiredHttpd(fruit, 1, { rootfs: "preloaded:fruitfs" }));
    const errors = await waitUntil("both placement errors", async () => {
      const [b, f] = await Promise.all([store.getActual(big, 0), store.getActual(fruit, 0)]);
      return b?.value.placementError && f?.value.placementError ? [b.value, f.value] : undefined;
    });
    expect(errors.map((a) => a.state)).toEqual([ActualLrpState.UNCLAIMED, ActualLrpState.UNCLAIMED]);
    expect(errors[0]!.placementError).toBe("insufficient resources");
    expect(errors[1]!.placementError).toBe("found no compatible cell");
  }, 60_000);
});

describe("evacuation", () => {
  it("keeps the instance reachable until its replacement runs on the other cell, then stops it", async () => {
    const processGuid = guid("evac");
    await desire(desiredHttpd(processGuid, 1));
    const [before] = await waitUntil("the instance RUNNING", allRunning(processGuid, 1));
    const draining = cluster.cells.find((c) => c.cellId === before!.cellId)!;
    const other = cluster.cells.find((c) => c !== draining)!;

    // Probe the index through whichever record the API would show (reference 2.5) all along.
    const failures: string[] = [];
    let probes = 0;
    let done = false;
    const probing = (async () => {
      while (!done) {
        const [shown] = await store.listResolved({ processGuid });
        if (shown?.state === ActualLrpState.RUNNING) {
          probes++;
          await page(shown).then(
            (text) => text === "page of instance 0\n" || failures.push(`${shown.cellId}: ${text}`),
            (err: Error) => failures.push(`${shown.cellId}: ${err.message}`),
          );
        } else failures.push(`no RUNNING record shown (${shown ? ActualLrpState[shown.state] : "none"})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const started = Date.now();
    await draining.evacuate();
    const took = Date.now() - started;
    done = true;
    await probing;

    expect(failures).toEqual([]);
    expect(probes).toBeGreaterThan(3);
    // It waited for the replacement, not for the timeout.
    expect(took).toBeLessThan(EVACUATION_TIMEOUT_MS);
    const [after] = (await allRunning(processGuid, 1)())!;
    expect(after!.cellId).toBe(other.cellId);
    expect(after!.instanceGuid).not.toBe(before!.instanceGuid);
    expect(await page(after!)).toBe("page of instance 0\n");
    expect(await store.listEvacuating({ processGuid })).toEqual([]);
    expect(draining.lrpInstances()).toBe(0);
    await expect(page(before!)).rejects.toThrow();
  }, 90_000);
});
