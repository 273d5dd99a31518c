import http from "node:http";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { removeDataDir } from "../fixtures/data-dir.js";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { startTestHost, type TestHost } from "../network/test-host.js";

// Issue 15's "done when", through `diego up` and its REST API only: desire 3 httpd instances with a
// monitor and a route, read each page through its published port and through the router by
// hostname, kill one and see it replaced, scale to 5 and back to 2, delete it.

interface ActualJson {
  process_guid: string;
  index: number;
  instance_guid: string;
  state: string;
  address: string;
  ports: { container_port: number; host_port: number }[] | null;
}

const GUID = "e2e-web";
const HOSTNAME = "hello.local";

let host: TestHost;
let dataDir: string;
let up: DiegoProcess | undefined;
let api: string;
let router: string;

beforeAll(async () => {
  host = await startTestHost(1);
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-lrp-e2e-"));
  up = await spawnDiego([
    "up",
    "--data-dir", dataDir,
    "--nats-port", "0",
    "--listen", "127.0.0.1:0",
    "--router-listen", "127.0.0.1:0",
    "--converge-interval", "1s",
    "--cell-address", host.hostAddress,
    "--host-ports", "61700-61799",
  ]);
  api = `http://${/ready on (\S+)/.exec(up.readyLine)![1]}`;
  router = /router on (\S+?)\)/.exec(up.readyLine)![1]!;
}, 120_000);

afterAll(async () => {
  await up?.kill("SIGTERM");
  host?.stop();
  await removeDataDir(dataDir);
}, 60_000);

const run = (script: string) => ({ run: { path: "/bin/sh", args: ["-c", script], user: "root" } });

async function actuals(): Promise<ActualJson[]> {
  const res = await fetch(`${api}/v1/actual_lrps/${GUID}`);
  expect(res.status).toBe(200);
  return (await res.json()) as ActualJson[];
}

/** Polls the API until `ok` holds for the RUNNING instances (the API has no LRP long-poll). */
async function runningWhen(ok: (running: ActualJson[]) => boolean, timeoutMs = 60_000): Promise<ActualJson[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const running = (await actuals()).filter((a) => a.state === "RUNNING");
    if (ok(running)) return running;
    if (Date.now() > deadline) throw new Error(`timed out; running: ${JSON.stringify(running)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** GET / through the router with a Host header (fetch does not let a caller set Host). */
function viaRouter(hostname: string): Promise<{ status: number; body: string }> {
  const [h, p] = router.split(":");
  return new Promise((resolve, reject) => {
    const req = http.get({ host: h, port: Number(p), path: "/", headers: { host: hostname }, agent: false, timeout: 3000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("router request timed out"))).on("error", reject);
  });
}

const indices = (running: ActualJson[]) => running.map((a) => a.index).sort((a, b) => a - b);

it("desires, serves, replaces, scales and deletes an LRP of httpd instances", async () => {
  const created = await fetch(`${api}/v1/desired_lrps`, {
    method: "POST",
    body: JSON.stringify({
      process_guid: GUID,
      domain: "e2e",
      rootfs: "preloaded:lucid64",
      instances: 3,
      setup: run('mkdir -p /www && echo "instance $INSTANCE_INDEX" > /www/index.html'),
      action: run("exec httpd -f -p 8080 -h /www"),
      monitor: run("timeout 1 wget -q -O /dev/null http://127.0.0.1:8080/"),
      ports: [8080],
      memory_mb: 32,
      routes: { "cf-router": [{ hostnames: [HOSTNAME], port: 8080 }] },
    }),
  });
  expect(created.status).toBe(201);

  // Three instances, distinct indices, each page at its published port.
  const three = await runningWhen((r) => r.length === 3);
  expect(indices(three)).toEqual([0, 1, 2]);
  for (const a of three) {
    const res = await fetch(`http://${a.address}:${a.ports![0]!.host_port}/`, { signal: AbortSignal.timeout(3000) });
    expect(await res.text()).toBe(`instance ${a.index}\n`);
  }

  // Through the router by hostname: every instance answers in turn.
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const r = await viaRouter(HOSTNAME);
    expect(r.status).toBe(200);
    seen.add(r.body);
  }
  expect([...seen].sort()).toEqual(["instance 0\n", "instance 1\n", "instance 2\n"]);
  expect((await viaRouter("nobody.local")).status).toBe(404);

  // Kill index 1: it comes back as a new instance.
  const killed = three.find((a) => a.index === 1)!;
  expect((await fetch(`${api}/v1/actual_lrps/${GUID}/index/1`, { method: "DELETE" })).status).toBe(204);
  const replaced = await runningWhen((r) => r.length === 3 && r.some((a) => a.index === 1 && a.instance_guid !== killed.instance_guid));
  expect(indices(replaced)).toEqual([0, 1, 2]);
  expect((await viaRouter(HOSTNAME)).status).toBe(200);

  // Scale to 5, then back to 2.
  const scale = (instances: number) => fetch(`${api}/v1/desired_lrps/${GUID}`, { method: "PUT", body: JSON.stringify({ instances }) });
  expect((await scale(5)).status).toBe(204);
  expect(indices(await runningWhen((r) => r.length === 5))).toEqual([0, 1, 2, 3, 4]);
  expect((await scale(2)).status).toBe(204);
  await runningWhen((r) => r.length === 2 && indices(r).join() === "0,1");
  await expect.poll(async () => (await actuals()).length, { timeout: 30_000, interval: 200 }).toBe(2);
  const bodies = new Set<string>();
  for (let i = 0; i < 8; i++) bodies.add((await viaRouter(HOSTNAME)).body);
  expect([...bodies].sort()).toEqual(["instance 0\n", "instance 1\n"]);

  // Delete: the instances go, and the router no longer knows the hostname.
  expect((await fetch(`${api}/v1/desired_lrps/${GUID}`, { method: "DELETE" })).status).toBe(204);
  await expect.poll(async () => (await actuals()).length, { timeout: 30_000, interval: 200 }).toBe(0);
  await expect.poll(async () => (await viaRouter(HOSTNAME)).status, { timeout: 5_000, interval: 100 }).toBe(404);
}, 240_000);
