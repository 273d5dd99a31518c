import { create } from "@bufbuild/protobuf";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { startConverger, type Converger, type ConvergerOptions } from "../../src/converger/index.js";
import { CellPresenceSchema } from "../../src/gen/diego/v1/cell_pb.js";
import { ActualLrpState as S, type ActualLRP } from "../../src/gen/diego/v1/lrp_pb.js";
import { registry as metrics } from "../../src/metrics/index.js";
import { decodeDesiredLRPCreateRequest } from "../../src/model/lrp-json.js";
import { connectNats, openCellsBucket, openLrpBuckets, subjects } from "../../src/nats/index.js";
import { createCellRegistry, createLrpStore, crashPolicyFrom, nowNanos, type CellRegistry, type LrpStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { sleep, waitFor } from "../dispatcher/task-driver.js";

// The converger's LRP loop against a real nats-server: records written through the LRP store,
// cells present only through the cell registry's heartbeats, and what the converger sends (auction
// kicks, stop requests) read by subscribing. Each test has its own server, so no test sees
// another's records or kicks.

const CELL_TTL = 1000;
const LONG = 60_000;
const MS = 1_000_000n;

interface Env {
  nats: TestNats;
  nc: NatsConnection;
  store: LrpStore;
  registry: CellRegistry;
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A scaled crash policy: 2 immediate restarts, then 400 ms doubling to 1.6 s, 200 at most, reset after 60 s. */
const POLICY = crashPolicyFrom({ crashImmediateRestarts: 2, crashBackoff: 400, crashBackoffMax: 1600, crashMaxRestarts: 200, crashResetAfter: LONG });

async function env(policy = POLICY): Promise<Env> {
  const nats = await startNats();
  cleanups.push(() => nats.dispose());
  const nc = await connectNats({ url: nats.url, name: "lrp-converge-test" });
  cleanups.push(() => nc.drain().catch(() => undefined));
  const store = createLrpStore(nc, await openLrpBuckets(nc), { crashPolicy: policy });
  cleanups.push(() => store.close());
  const registry = await createCellRegistry(await openCellsBucket(nc, CELL_TTL), CELL_TTL);
  cleanups.push(() => registry.stop());
  return { nats, nc, store, registry };
}

async function converger(e: Env, opts: Partial<ConvergerOptions> = {}): Promise<Converger> {
  const c = await startConverger({
    natsUrl: e.nats.url,
    convergeIntervalMs: 200,
    kickIntervalMs: LONG,
    pendingTimeoutMs: LONG,
    claimTimeoutMs: LONG,
    completedTtlMs: LONG,
    retryIntervalMs: LONG,
    lockTtlMs: 1500,
    cellTtlMs: CELL_TTL,
    crashPolicy: POLICY,
    ...opts,
  });
  cleanups.push(() => c.stop());
  await waitFor("converger leads", () => c.isLeader());
  return c;
}

/** A cell that heartbeats until stopped; `lastBeat` is when its last heartbeat was written (ms). */
function liveCell(e: Env, cellId: string): { stop(): void; lastBeat(): number } {
  let last = 0;
  const beat = async (): Promise<void> => {
    const at = Date.now();
    await e.registry.announce(create(CellPresenceSchema, { cellId, sessionId: `${cellId}-session`, stacks: ["cflinuxfs2"], heartbeatAt: nowNanos() }));
    last = at;
  };
  void beat();
  const timer = setInterval(() => void beat(), CELL_TTL / 5);
  const stop = (): void => clearInterval(timer);
  cleanups.push(stop);
  return { stop, lastBeat: () => last };
}

function listen(e: Env, subject: string): Array<{ at: number; data: string }> {
  const got: Array<{ at: number; data: string }> = [];
  const sub = e.nc.subscribe(subject, { callback: (_err: Error | null, m: Msg) => void got.push({ at: Date.now(), data: m.string() }) });
  cleanups.push(() => sub.unsubscribe());
  return got;
}

const desire = (e: Env, guid: string, instances: number, domain = "d") =>
  e.store.desire(decodeDesiredLRPCreateRequest({ process_guid: guid, domain, rootfs: "preloaded:cflinuxfs2", instances, action: { run: { path: "/bin/sleep" } } }));

async function runOn(e: Env, guid: string, index: number, cellId: string, instanceGuid = `${guid}-${index}-${cellId}`): Promise<void> {
  const key = { cellId, instanceGuid };
  await e.store.claim(guid, index, key);
  await e.store.start(guid, index, key, { address: "10.0.0.1", ports: [] });
}

/** Claims and crashes the index until its crash count is `count`. */
async function crashUntil(e: Env, guid: string, index: number, count: number): Promise<ActualLRP> {
  for (let n = 0; ; n++) {
    const a = (await e.store.getActual(guid, index))!.value;
    if (a.crashCount >= count) return a;
    const key = { cellId: "cell-a", instanceGuid: `${guid}-${index}-crash-${n}` };
    await e.store.claim(guid, index, key);
    await e.store.crash(guid, index, key, "Exited with status 17");
  }
}

async function gauge(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = (await metrics.getMetricsAsJSON()).find((m) => m.name === name);
  const sample = metric?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return sample?.value;
}

const actual = async (e: Env, guid: string, index: number): Promise<ActualLRP | undefined> => (await e.store.getActual(guid, index))?.value;
const msSince = (since: bigint): number => Number((nowNanos() - since) / MS);

describe("LRP convergence", () => {
  it("creates missing indices UNCLAIMED and kicks the auctioneer", async () => {
    const e = await env();
    await desire(e, "web", 3);
    await e.store.retire("web", 1);
    await e.store.retire("web", 2);
    const kicks = listen(e, subjects.auctionKick);

    await converger(e);
    const made = await waitFor("indices 1 and 2 recreated", async () => {
      const [one, two] = await Promise.all([actual(e, "web", 1), actual(e, "web", 2)]);
      return one && two ? [one, two] : undefined;
    });
    expect(made.map((a) => a.state)).toEqual([S.UNCLAIMED, S.UNCLAIMED]);
    await waitFor("an auction kick", () => kicks.length > 0);
    expect((await e.store.listActuals({ processGuid: "web" })).map((a) => a.index).sort()).toEqual([0, 1, 2]);
    // The converger's gauges (this process's registry) show what its last pass read.
    await waitFor("the gauges of a pass after the creation", async () => (await gauge("diego_lrp_actual_instances", { state: "UNCLAIMED" })) === 3);
    expect(await gauge("diego_lrp_desired_instances")).toBe(3);
    expect(await gauge("diego_lrp_actual_instances", { state: "RUNNING" })).toBe(0);
  });

  it("retires an extra instance only once its domain is fresh, asking its cell to stop it", async () => {
    const e = await env();
    liveCell(e, "cell-a");
    await desire(e, "api", 1, "apps");
    await e.store.createActual({ processGuid: "api", index: 1, domain: "apps" });
    await runOn(e, "api", 1, "cell-a", "extra-instance");
    const stops = listen(e, subjects.lrpStop("cell-a"));
    const c = await converger(e);

    // The domain is not fresh: passes run, the extra is kept.
    const passes = c.passes();
    await waitFor("two more passes", () => c.passes() >= passes + 2);
    await c.convergeNow();
    expect(stops).toEqual([]);
    expect((await actual(e, "api", 1))?.state).toBe(S.RUNNING);

    await e.store.upsertDomain("apps", 0);
    await waitFor("a stop request", () => stops.length > 0);
    expect(JSON.parse(stops[0]!.data)).toEqual({ process_guid: "api", index: 1, instance_guid: "extra-instance" });
    // The cell removes the record once it has stopped the container; until then it stays.
    expect((await actual(e, "api", 1))?.state).toBe(S.RUNNING);
    expect((await actual(e, "api", 0))?.state).toBe(S.UNCLAIMED);
  });

  it("restarts a crashed instance when its scaled backoff ends, and leaves one that crashed 200 times", async () => {
    const e = await env();
    liveCell(e, "cell-a");
    await desire(e, "crashy", 1);
    // A long interval: the restart must come from the backoff's own timer.
    const c = await converger(e, { convergeIntervalMs: LONG });
    const kicks = listen(e, subjects.auctionKick);

    // Crashes 1 and 2 restart at once; the third waits 400 ms.
    const crashed = await crashUntil(e, "crashy", 0, 3);
    expect(crashed.state).toBe(S.CRASHED);
    const restarted = await waitFor("the restart", async () => {
      const a = await actual(e, "crashy", 0);
      return a?.state === S.UNCLAIMED ? a : undefined;
    });
    const waitedMs = Number((restarted.since - crashed.since) / MS);
    expect(waitedMs).toBeGreaterThanOrEqual(400);
    expect(waitedMs).toBeLessThan(400 + 5_000);
    expect(restarted.crashCount).toBe(3);
    await waitFor("an auction kick", () => kicks.some((k) => k.at >= Date.now() - 5_000));

    // Crash on to 200: given up on. Past the longest backoff, a pass leaves it CRASHED.
    const last = await crashUntil(e, "crashy", 0, 200);
    expect(last.state).toBe(S.CRASHED);
    const kicksBefore = kicks.length;
    await sleep(1600 + 200);
    const passStarted = Date.now();
    await c.convergeNow();
    // A pass right after a burst of writes to one key still reads the store promptly.
    expect(Date.now() - passStarted).toBeLessThan(5_000);
    const after = await actual(e, "crashy", 0);
    expect(after?.state).toBe(S.CRASHED);
    expect(after?.crashCount).toBe(200);
    expect(kicks.length).toBe(kicksBefore);
  });

  it("counts a crash after a long enough run as the first again (reset scaled to 500 ms)", async () => {
    const policy = crashPolicyFrom({ crashImmediateRestarts: 2, crashBackoff: 400, crashBackoffMax: 1600, crashMaxRestarts: 200, crashResetAfter: 500 });
    const e = await env(policy);
    await desire(e, "flaky", 2);
    await crashUntil(e, "flaky", 0, 5);
    await crashUntil(e, "flaky", 1, 5);
    await runOn(e, "flaky", 0, "cell-a");
    await runOn(e, "flaky", 1, "cell-a");
    const longRun = (await actual(e, "flaky", 0))!;
    await e.store.crash("flaky", 1, { cellId: "cell-a", instanceGuid: "flaky-1-cell-a" }, "Exited with status 1");
    await waitFor("500 ms RUNNING", () => msSince(longRun.since) > 500);
    await e.store.crash("flaky", 0, { cellId: "cell-a", instanceGuid: "flaky-0-cell-a" }, "Exited with status 1");

    const [reset, counted] = [await actual(e, "flaky", 0), await actual(e, "flaky", 1)];
    expect([reset?.state, reset?.crashCount]).toEqual([S.UNCLAIMED, 1]);
    expect([counted?.state, counted?.crashCount]).toEqual([S.CRASHED, 6]);
  });

  it("replaces an instance whose cell stops heartbeating, not before the cell TTL has passed", async () => {
    const e = await env();
    const a = liveCell(e, "cell-a");
    liveCell(e, "cell-b");
    await desire(e, "svc", 2);
    await runOn(e, "svc", 0, "cell-a");
    await runOn(e, "svc", 1, "cell-b");
    await converger(e);
    const kicks = listen(e, subjects.auctionKick);
    const before = (await actual(e, "svc", 0))!;

    a.stop();
    const stoppedAt = Date.now();
    const replaced = await waitFor(
      "index 0 replaced",
      async () => {
        const r = await actual(e, "svc", 0);
        return r && r.modificationTag?.epoch !== before.modificationTag?.epoch ? { record: r, at: Date.now() } : undefined;
      },
      10_000,
      10,
    );
    expect(replaced.record.state).toBe(S.UNCLAIMED);
    expect(replaced.at - a.lastBeat()).toBeGreaterThanOrEqual(CELL_TTL);
    expect(replaced.at - stoppedAt).toBeLessThan(CELL_TTL + 3_000);
    await waitFor("an auction kick", () => kicks.some((k) => k.at >= stoppedAt));
    // The instance on the cell that lives is untouched.
    expect((await actual(e, "svc", 1))?.instanceGuid).toBe("svc-1-cell-b");
    expect((await actual(e, "svc", 1))?.state).toBe(S.RUNNING);
  });

  it("auctions an UNCLAIMED instance again once it is stale", async () => {
    const e = await env();
    const { created } = await desire(e, "waiting", 1);
    const kicks = listen(e, subjects.auctionKick);
    await converger(e, { convergeIntervalMs: LONG, staleUnclaimedMs: 600 });
    await waitFor("a kick", () => kicks.length > 0, 5_000);
    const sinceMs = Number(created[0]!.since / MS);
    expect(kicks[0]!.at - sinceMs).toBeGreaterThanOrEqual(600);
    // Nothing about the record changes: it is only offered again.
    const now = await actual(e, "waiting", 0);
    expect(now?.state).toBe(S.UNCLAIMED);
    expect(now?.since).toBe(created[0]!.since);
  });

  it("removes an evacuating copy once its replacement runs, and has the draining cell stop it", async () => {
    const e = await env();
    liveCell(e, "cell-a");
    liveCell(e, "cell-b");
    await desire(e, "moving", 1);
    await runOn(e, "moving", 0, "cell-a", "old-instance");
    await e.store.evacuate("moving", 0, { cellId: "cell-a", instanceGuid: "old-instance" });
    const stops = listen(e, subjects.lrpStop("cell-a"));
    const c = await converger(e);

    // The replacement is not running yet: the copy keeps serving.
    const passes = c.passes();
    await waitFor("two more passes", () => c.passes() >= passes + 2);
    expect((await e.store.getEvacuating("moving", 0))?.value.state).toBe(S.RUNNING);

    await runOn(e, "moving", 0, "cell-b", "new-instance");
    await waitFor("the copy removed", async () => (await e.store.getEvacuating("moving", 0)) === undefined);
    await waitFor("a stop request to the draining cell", () => stops.length > 0);
    expect(JSON.parse(stops[0]!.data)).toEqual({ process_guid: "moving", index: 0, instance_guid: "old-instance" });
    expect((await actual(e, "moving", 0))?.instanceGuid).toBe("new-instance");
  });
});
