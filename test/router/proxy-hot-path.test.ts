import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccessLogger } from "../../src/router/access-log.js";
import { Balancer } from "../../src/router/balancer.js";
import { createProxy, type Proxy } from "../../src/router/proxy.js";
import type { Endpoint } from "../../src/router/route-table.js";

// The proxy's per-request path as the CLI runs it: the access log on a file destination
// (pino.destination, synchronous, as `diego router` logs), header lists built from the raw
// heads. A real instance server behind the real proxy; the route table is a fixed pool here
// (the table and its feed have their own tests).

let dir: string;
let logFile: string;
let instance: http.Server;
let proxy: Proxy;
let proxyPort: number;
const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });

const listen = async (server: http.Server): Promise<number> => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "router-hot-path-"));
  logFile = path.join(dir, "router.log");
  instance = http.createServer((req, res) => {
    if (req.url === "/hop") {
      // A response header named by Connection belongs to the instance's hop only.
      res.writeHead(200, [["Connection", "keep-alive, X-Instance-Hop"], ["X-Instance-Hop", "secret"], ["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]);
      return void res.end("hop");
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(req.rawHeaders));
  });
  const port = await listen(instance);
  const ep: Endpoint = { id: `127.0.0.1:${port}`, host: "127.0.0.1", port, processGuid: "pg", index: 0, instanceGuid: "ig-0", evacuating: false, app: "log-pg" };
  const logger = pino({ level: "info" }, pino.destination({ dest: logFile, sync: true }));
  proxy = createProxy({ lookup: (h) => (h === "app.local" ? { hostname: h, endpoints: [ep] } : undefined), balancer: new Balancer(), logger, accessLog: true });
  proxyPort = await listen(proxy.server);
});

afterAll(async () => {
  agent.destroy();
  proxy.server.closeAllConnections();
  await new Promise((r) => proxy.server.close(r));
  proxy.close();
  instance.closeAllConnections();
  await new Promise((r) => instance.close(r));
  await rm(dir, { recursive: true, force: true });
});

function get(pathname: string, headers: Array<[string, string]> = []): Promise<{ status: number; body: string; raw: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxyPort, path: pathname, agent, headers: [["Host", "app.local"], ...headers].flat() }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, raw: res.rawHeaders }));
    });
    req.on("error", reject);
    req.end();
  });
}

const accessLines = async (): Promise<Array<Record<string, unknown>>> =>
  (await readFile(logFile, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === "access");

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the proxy's hot path", () => {
  it("writes one access line per request, each whole, while the router runs", async () => {
    const before = (await accessLines()).length;
    const paths = Array.from({ length: 300 }, (_, i) => `/r/${i}`);
    const replies = await Promise.all(paths.map((p) => get(p)));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    // Batched lines go out within 100 ms: without stopping anything, every one arrives.
    const lines = await until("300 access lines", async () => {
      const all = await accessLines();
      return all.length - before >= 300 ? all.slice(before) : undefined;
    });
    expect(lines).toHaveLength(300);
    expect(new Set(lines.map((l) => l.path))).toEqual(new Set(paths));
    expect(lines.every((l) => l.status === 200 && l.route === "app.local" && l.instance === "ig-0" && typeof l.latency_ms === "number")).toBe(true);
  });

  it("batches access lines into one write and writes what waits on flush (stop)", async () => {
    const file = path.join(dir, "batch.log");
    const access = createAccessLogger(pino({ level: "info" }, pino.destination({ dest: file, sync: true })));
    for (let i = 0; i < 3; i++) access.logger.info({ path: `/b/${i}` }, "access");
    // Nothing written yet: the lines wait for more or for 100 ms.
    expect(readFileSync(file, "utf8")).toBe("");
    access.flush();
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { path: string });
    expect(lines.map((l) => l.path)).toEqual(["/b/0", "/b/1", "/b/2"]);
  });

  it("writes the waiting access lines when the process exits", async () => {
    const file = path.join(dir, "exit.log");
    const code = [
      `const { default: pino } = await import("pino");`,
      `const { createAccessLogger } = await import(${JSON.stringify(path.resolve(import.meta.dirname, "../../src/router/access-log.ts"))});`,
      `const a = createAccessLogger(pino(pino.destination({ dest: ${JSON.stringify(file)}, sync: true })));`,
      `for (let i = 0; i < 5; i++) a.logger.info({ path: "/exit/" + i }, "access");`,
      `process.exit(0);`,
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: path.resolve(import.meta.dirname, "../.."), stdio: "inherit" });
    expect(await new Promise((r) => child.once("exit", r))).toBe(0);
    const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { path: string });
    expect(lines.map((l) => l.path)).toEqual(["/exit/0", "/exit/1", "/exit/2", "/exit/3", "/exit/4"]);
  });

  it("passes repeated request headers on as sent and replaces a client's X-CF-InstanceID and X-CF-ApplicationID", async () => {
    const r = await get("/", [["X-Tag", "one"], ["X-Tag", "two"], ["X-CF-InstanceID", "spoofed"], ["x-cf-applicationid", "spoofed"]]);
    const raw = JSON.parse(r.body) as string[];
    const values = (name: string): string[] => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === name);
    expect(values("x-tag")).toEqual(["one", "two"]);
    expect(values("x-cf-instanceid")).toEqual(["ig-0"]);
    expect(values("x-cf-applicationid")).toEqual(["log-pg"]);
    expect(values("host")).toEqual(["app.local"]);
  });

  it("keeps an instance's hop-by-hop response headers from the client and repeated ones whole", async () => {
    const r = await get("/hop");
    const names = r.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(r.body).toBe("hop");
    expect(names).not.toContain("x-instance-hop");
    expect(r.raw.filter((_, i) => i % 2 === 1 && r.raw[i - 1]!.toLowerCase() === "set-cookie")).toEqual(["a=1", "b=2"]);
  });
});
