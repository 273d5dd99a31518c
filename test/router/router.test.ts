import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { decodeDesiredLRPCreateRequest, decodeDesiredLRPUpdateRequest } from "../../src/model/lrp-json.js";
import { connectNats, openLrpBuckets } from "../../src/nats/index.js";
import { startRouter, type Router } from "../../src/router/index.js";
import { createLrpStore, type LrpStore } from "../../src/store/lrp-store.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { freePort } from "../fixtures/ports.js";

// The router against a real nats-server, with LRP records written through the real LRP store.
// Until the LRP cells land, plain HTTP servers on 127.0.0.1 stand in for instances: an LRP is
// desired with routes, and its actuals are claimed and started with address 127.0.0.1 and host
// ports = those servers' ports, as a cell would report them.

let nats: TestNats;
let nc: NatsConnection;
let store: LrpStore;
let router: Router;
const accessLines: Array<Record<string, unknown>> = [];
const backends: Backend[] = [];

interface Backend {
  name: string;
  port: number;
  server: http.Server;
  hits: number;
  close(): Promise<void>;
}

/** An instance stand-in: answers with its name, echoes headers, counts uploads, streams downloads. */
async function backend(name: string, handler?: http.RequestListener): Promise<Backend> {
  const b: Backend = { name, port: 0, hits: 0, server: http.createServer(), close: async () => undefined };
  b.server.on("request", (req, res) => {
    b.hits++;
    if (handler) return handler(req, res);
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/headers") return void res.end(JSON.stringify(req.headers));
    if (url.pathname === "/upload") {
      let n = 0;
      req.on("data", (c: Buffer) => (n += c.length));
      return void req.on("end", () => res.end(String(n)));
    }
    if (url.pathname === "/download") return void Readable.from(chunks(Number(url.searchParams.get("bytes")))).pipe(res);
    res.end(name);
  });
  await new Promise<void>((r) => b.server.listen(0, "127.0.0.1", r));
  b.port = (b.server.address() as AddressInfo).port;
  b.close = () =>
    new Promise<void>((r) => {
      b.server.close(() => r());
      b.server.closeAllConnections();
    });
  backends.push(b);
  return b;
}

function* chunks(total: number): Generator<Buffer> {
  const chunk = Buffer.alloc(1 << 20, 7);
  for (let sent = 0; sent < total; sent += chunk.length) yield total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
}

const clientAgent = new http.Agent({ keepAlive: true });

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function get(host: string, path = "/", headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: router.port, path, headers: { host, ...headers }, agent: clientAgent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const routes = (hostnames: string[]) => ({ "cf-router": [{ hostnames, port: 8080 }] });

async function desire(guid: string, hostnames: string[], instances: number): Promise<void> {
  await store.desire(
    decodeDesiredLRPCreateRequest({
      process_guid: guid,
      log_guid: `log-${guid}`,
      domain: "router-test",
      rootfs: "preloaded:cflinuxfs2",
      instances,
      ports: [8080],
      routes: routes(hostnames),
      action: { run: { path: "/bin/httpd" } },
    }),
  );
}

const keyOf = (guid: string, index: number) => ({ cellId: "cell-router-test", instanceGuid: `ig-${guid}-${index}` });

/** What a cell does once the instance's process runs: claim, then start with its address. */
async function run(guid: string, index: number, hostPort: number): Promise<void> {
  await store.claim(guid, index, keyOf(guid, index));
  await store.start(guid, index, keyOf(guid, index), { address: "127.0.0.1", ports: [{ containerPort: 8080, hostPort }] });
}

/** An LRP with one instance per backend, each RUNNING at that backend's port. */
async function runLrp(guid: string, hostnames: string[], bs: Array<{ port: number }>): Promise<void> {
  await desire(guid, hostnames, bs.length);
  for (const [i, b] of bs.entries()) await run(guid, i, b.port);
}

const answering = (host: string, body?: string) => until(`${host} to answer`, async () => {
  const r = await get(host);
  return r.status === 200 && (body === undefined || r.body === body) ? r : undefined;
});

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "router-test" });
  store = createLrpStore(nc, await openLrpBuckets(nc));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) accessLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  router = await startRouter({ nc, port: 0, logger: pino({ level: "info" }, sink), registerIntervalMs: 60_000 });
});

afterAll(async () => {
  clientAgent.destroy();
  await router?.stop();
  await Promise.all(backends.map((b) => b.close()));
  store?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

describe("router", () => {
  it("routes by Host (port stripped, any case) to the right LRP, within a second of the instance running", async () => {
    const a = await backend("a");
    const b = await backend("b");
    await desire("route-a", ["app-a.local"], 1);
    await runLrp("route-b", ["app-b.local"], [b]);
    const started = Date.now();
    await run("route-a", 0, a.port);
    await answering("app-a.local", "a");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await get("APP-A.Local:8080")).body).toBe("a");
    expect((await get("app-b.local")).body).toBe("b");
    const line = accessLines.find((l) => l.route === "app-b.local");
    expect(line).toMatchObject({ msg: "access", status: 200, process_guid: "route-b", instance: "ig-route-b-0", endpoint: `127.0.0.1:${b.port}` });
    expect(typeof line!.latency_ms).toBe("number");
  });

  it("spreads requests evenly over 3 instances", async () => {
    const bs = await Promise.all(["s0", "s1", "s2"].map((n) => backend(n)));
    await runLrp("spread", ["spread.local"], bs);
    await until("3 endpoints", () => (router.table.lookup("spread.local")?.endpoints.length === 3 ? true : undefined));
    const bodies = await Promise.all(Array.from({ length: 30 }, () => get("spread.local")));
    expect(bodies.every((r) => r.status === 200)).toBe(true);
    expect(bs.map((b) => b.hits)).toEqual([10, 10, 10]);
  });

  it("404s an unknown host and 503s a known one with no RUNNING instance (scaled to 0)", async () => {
    const unknown = await get("nobody.local");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toBe("404 Not Found: Requested route ('nobody.local') does not exist.\n");
    expect(unknown.headers["x-cf-routererror"]).toBe("unknown_route");

    const b = await backend("scale");
    await runLrp("scale", ["scale.local"], [b]);
    await answering("scale.local");
    const { stops } = await store.updateDesired("scale", decodeDesiredLRPUpdateRequest({ instances: 0 }));
    // The cell stops the container and removes its record.
    for (const s of stops) await store.remove("scale", 0, { cellId: s.cellId, instanceGuid: s.instanceGuid });
    const gone = await until("503", async () => {
      const r = await get("scale.local");
      return r.status === 503 ? r : undefined;
    }, 1_000);
    expect(gone.body).toBe("503 Service Unavailable: Requested route ('scale.local') has no available endpoints.\n");
  });

  it("retries a request on another instance when one refuses the connection", async () => {
    const live = await backend("live");
    const dead = await freePort();
    await runLrp("refused", ["refused.local"], [{ port: dead }, live]);
    await until("2 endpoints", () => (router.table.lookup("refused.local")?.endpoints.length === 2 ? true : undefined));
    const replies = await Promise.all(Array.from({ length: 10 }, () => get("refused.local")));
    expect(replies.map((r) => `${r.status} ${r.body}`)).toEqual(Array(10).fill("200 live"));
  });

  it("answers 502 when the instance drops the connection before answering", async () => {
    const b = await backend("broken", (req) => req.socket.destroy());
    await runLrp("broken", ["broken.local"], [b]);
    const r = await until("502", async () => {
      const x = await get("broken.local");
      return x.status === 502 ? x : undefined;
    });
    expect(r.body).toBe("502 Bad Gateway: Registered endpoint failed to handle the request.\n");
    expect(r.headers["x-cf-routererror"]).toBe("endpoint_failure");
  });

  it("cuts the client's connection when the instance fails mid-response, so a partial body never looks whole", async () => {
    const b = await backend("cut", (_req, res) => {
      // Chunked, so only a proper last chunk tells a client the body is complete.
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("partial", () => res.socket?.destroy());
    });
    await runLrp("cut", ["cut.local"], [b]);
    await until("cut endpoint", () => (router.table.lookup("cut.local")?.endpoints.length === 1 ? true : undefined));
    const outcome = await new Promise<string>((resolve) => {
      http
        .get({ host: "127.0.0.1", port: router.port, headers: { host: "cut.local" }, agent: false }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(`complete: ${body}`));
          res.on("error", () => resolve(`cut after: ${body}`));
        })
        .on("error", (err) => resolve(`request error: ${err.message}`));
    });
    expect(outcome).toMatch(/^cut after: (partial)?$/);
    const line = await until("access line", () => accessLines.find((l) => l.route === "cut.local"));
    expect(line.error).toMatch(/response cut/);
  });

  it("adds X-Forwarded-For/-Proto, X-Request-Start and X-Vcap-Request-Id, keeping a given request id", async () => {
    const b = await backend("hdr");
    await runLrp("hdr", ["hdr.local"], [b]);
    await answering("hdr.local");
    const before = Date.now();
    const sent = JSON.parse((await get("hdr.local", "/headers", { "x-forwarded-for": "203.0.113.7" })).body) as Record<string, string>;
    expect(sent["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1");
    expect(sent["x-forwarded-proto"]).toBe("http");
    expect(Number(sent["x-request-start"])).toBeGreaterThanOrEqual(before);
    expect(sent["x-vcap-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent["x-cf-instanceid"]).toBe("ig-hdr-0");
    expect(sent["x-cf-applicationid"]).toBe("log-hdr");
    const kept = JSON.parse((await get("hdr.local", "/headers", { "x-vcap-request-id": "given-id" })).body) as Record<string, string>;
    expect(kept["x-vcap-request-id"]).toBe("given-id");
    // Hop-by-hop headers, and those the client's Connection header names, stay on the client's
    // hop: a client cannot make the router pass X-Secret on, nor drop the X-Forwarded-For it adds.
    const hop = JSON.parse(
      (await get("hdr.local", "/headers", { connection: "keep-alive, x-secret, x-forwarded-for", "x-secret": "1", "proxy-connection": "x", te: "trailers" })).body,
    ) as Record<string, string>;
    expect(hop["x-secret"]).toBeUndefined();
    expect(hop["proxy-connection"]).toBeUndefined();
    expect(hop.te).toBeUndefined();
    expect(hop["x-forwarded-for"]).toBe("127.0.0.1");
  });

  it("keeps an evacuating instance routable until its replacement runs", async () => {
    const old = await backend("old");
    const next = await backend("next");
    await runLrp("evac", ["evac.local"], [old]);
    await answering("evac.local");
    await store.evacuate("evac", 0, keyOf("evac", 0));
    expect((await get("evac.local")).body).toBe("old");
    await store.claim("evac", 0, { cellId: "cell-2", instanceGuid: "ig-evac-new" });
    await store.start("evac", 0, { cellId: "cell-2", instanceGuid: "ig-evac-new" }, { address: "127.0.0.1", ports: [{ containerPort: 8080, hostPort: next.port }] });
    await store.removeEvacuating("evac", 0, keyOf("evac", 0));
    await answering("evac.local", "next");
    expect(new Set((await Promise.all([get("evac.local"), get("evac.local")])).map((r) => r.body))).toEqual(new Set(["next"]));
  });

  it("drops a route removed by an update at once", async () => {
    const b = await backend("upd");
    await runLrp("upd", ["upd-1.local", "upd-2.local"], [b]);
    await answering("upd-1.local");
    await store.updateDesired("upd", decodeDesiredLRPUpdateRequest({ routes: routes(["upd-2.local"]) }));
    await until("upd-1 gone", async () => ((await get("upd-1.local")).status === 404 ? true : undefined), 1_000);
    expect((await get("upd-2.local")).body).toBe("upd");
  });

  it("loses no request after a second when an instance dies during a steady stream", async () => {
    const bs = await Promise.all(["k0", "k1", "k2"].map((n) => backend(n)));
    await runLrp("kill", ["kill.local"], bs);
    await until("3 endpoints", () => (router.table.lookup("kill.local")?.endpoints.length === 3 ? true : undefined));
    const failures: number[] = [];
    let ok = 0;
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const r = await get("kill.local").catch(() => ({ status: 0, body: "" }));
        if (r.status === 200) ok++;
        else failures.push(Date.now());
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    await until("some traffic", () => (ok > 50 ? true : undefined));
    // The instance's process dies (its port refuses), then its cell reports the crash.
    await bs[0]!.close();
    const killedAt = Date.now();
    await store.crash("kill", 0, keyOf("kill", 0), "Exited with status 137");
    const okAtKill = ok;
    await until("the crashed instance out of the table", () => (router.table.lookup("kill.local")?.endpoints.length === 2 ? true : undefined), 1_000);
    await until("1.5 s of traffic after the kill", () => (Date.now() - killedAt > 1_500 ? true : undefined), 3_000);
    stop = true;
    await Promise.all(loops);
    expect(ok - okAtKill).toBeGreaterThan(50);
    // At most the requests in flight on it when it died.
    expect(failures.length).toBeLessThanOrEqual(4);
    expect(failures.filter((t) => t > killedAt + 1_000)).toEqual([]);
  });

  it("proxies a WebSocket upgrade both ways", async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      await runLrp("ws", ["ws.local"], [{ port: (server.address() as AddressInfo).port }]);
      await until("ws endpoint", () => (router.table.lookup("ws.local")?.endpoints.length === 1 ? true : undefined));
      const ws = new WebSocket(`ws://127.0.0.1:${router.port}/echo`, { headers: { host: "ws.local" } });
      await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
      const echoed = new Promise<string>((resolve) => ws.once("message", (d: Buffer) => resolve(d.toString())));
      ws.send("hello through the router");
      expect(await echoed).toBe("hello through the router");
      ws.close();
    } finally {
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("streams a large upload and download through without holding them (RSS stays flat)", async () => {
    const b = await backend("big");
    await runLrp("big", ["big.local"], [b]);
    await answering("big.local");
    const size = 256 * 1024 * 1024;
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const uploaded = await new Promise<string>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: router.port, method: "POST", path: "/upload", headers: { host: "big.local" } }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(body));
        });
        req.on("error", reject);
        pipeline(Readable.from(chunks(size)), req).catch(reject);
      });
      expect(Number(uploaded)).toBe(size);
      const downloaded = await new Promise<number>((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port: router.port, path: `/download?bytes=${size}`, headers: { host: "big.local" } }, (res) => {
            let n = 0;
            res.on("data", (c: Buffer) => (n += c.length));
            res.on("end", () => resolve(n));
          })
          .on("error", reject);
      });
      expect(downloaded).toBe(size);
    } finally {
      clearInterval(sampler);
    }
    // Router, client and instance share this process, so RSS also holds their garbage chunks
    // until a GC (tens of MiB); buffering either body would add its 256 MiB on top.
    expect(peak - rssBefore).toBeLessThan(128 * 1024 * 1024);
  });
});
