import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeDesiredLRPCreateRequest } from "../../src/model/lrp-json.js";
import { connectNats, openLrpBuckets } from "../../src/nats/index.js";
import { startRouter, type Router } from "../../src/router/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/lrp-store.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// router.register / router.unregister on a real nats-server, checked against the shape in the
// reference (section 9.2) as a gorouter would read them. A stand-in gorouter answers
// router.greet with a short prune threshold so the periodic re-registration shows in seconds.

let nats: TestNats;
let nc: NatsConnection;
let store: LrpStore;
const routers: Router[] = [];
const subs: Subscription[] = [];
const seen: Array<{ subject: string; at: number; body: Record<string, unknown> }> = [];

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "registrar-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
  for (const subject of ["router.register", "router.unregister"]) {
    subs.push(nc.subscribe(subject, { callback: (_e, m) => void seen.push({ subject, at: Date.now(), body: m.json() }) }));
  }
  subs.push(nc.subscribe("router.greet", { callback: (_e, m) => void m.respond(JSON.stringify({ minimumRegisterIntervalInSeconds: 1, pruneThresholdInSeconds: 3 })) }));
});

afterAll(async () => {
  for (const r of routers) await r.stop();
  for (const s of subs) s.unsubscribe();
  store?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const key = { cellId: "cell-1", instanceGuid: "ig-reg-0" };

async function desire(guid: string, hostnames: string[]): Promise<void> {
  await store.desire(
    decodeDesiredLRPCreateRequest({
      process_guid: guid,
      log_guid: `log-${guid}`,
      domain: "reg",
      rootfs: "preloaded:cflinuxfs2",
      instances: 1,
      ports: [8080],
      routes: { "cf-router": [{ hostnames, port: 8080 }] },
      action: { run: { path: "/bin/httpd" } },
    }),
  );
}

describe("route registration on NATS", () => {
  it("registers a RUNNING instance in 2015's shape, again every prune threshold / 3, and unregisters it when it crashes", async () => {
    routers.push(await startRouter({ nc, port: 0 }));
    await desire("reg", ["a.example.com", "b.example.com"]);
    await store.claim("reg", 0, key);
    await store.start("reg", 0, key, { address: "10.10.11.11", ports: [{ containerPort: 8080, hostPort: 60001 }] });
    const expected = { host: "10.10.11.11", port: 60001, uris: ["a.example.com", "b.example.com"], app: "log-reg", private_instance_id: "ig-reg-0" };
    const first = await until("router.register", () => seen.find((m) => m.subject === "router.register"));
    expect(first.body).toEqual(expected);
    // The greeting asked for a 3 s prune threshold: everything again every second.
    const repeats = await until("re-registrations", () => {
      const r = seen.filter((m) => m.subject === "router.register" && m.at > first.at);
      return r.length >= 2 ? r : undefined;
    });
    expect(repeats.map((m) => m.body)).toEqual([expected, expected]);

    // A gorouter that starts asks for everything at once.
    const before = seen.length;
    nc.publish("router.start", JSON.stringify({ minimumRegisterIntervalInSeconds: 5, pruneThresholdInSeconds: 120 }));
    await until("registration after router.start", () => (seen.slice(before).some((m) => m.subject === "router.register") ? true : undefined), 900);

    await store.crash("reg", 0, key, "Exited with status 1");
    const gone = await until("router.unregister", () => seen.find((m) => m.subject === "router.unregister"));
    expect(gone.body).toEqual(expected);
  });

  it("publishes nothing with registration switched off", async () => {
    await routers.pop()!.stop();
    const quiet = await startRouter({ nc, port: 0, register: false });
    routers.push(quiet);
    const before = seen.length;
    const k = { cellId: "cell-1", instanceGuid: "ig-quiet-0" };
    await desire("quiet", ["quiet.example.com"]);
    await store.claim("quiet", 0, k);
    await store.start("quiet", 0, k, { address: "10.10.11.12", ports: [{ containerPort: 8080, hostPort: 60002 }] });
    await until("the route in the table", () => (quiet.table.lookup("quiet.example.com")?.endpoints.length === 1 ? true : undefined));
    // The router publishes on this same connection in the tick it changes its table: a round
    // trip now would bring back anything it had sent.
    await nc.flush();
    expect(seen.slice(before)).toEqual([]);
  });
});
