import http from "node:http";
import net from "node:net";
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDispatcher, type Dispatcher } from "../../src/dispatcher/index.js";
import { startMetricsServer, type MetricsServer } from "../../src/metrics/http.js";
import { silent, startCluster, type TestCluster } from "../fixtures/cluster.js";
import { spawnDiego } from "../fixtures/receptor.js";
import { createGrpcApi, grpcError } from "./grpc-client.js";

// What Prometheus sees: /metrics on the receptor (this process holds a receptor, an auctioneer,
// a cell and a dispatcher, as `diego up` does) parses as exposition text, and its numbers move
// when a task runs through a real cell and its callback is delivered.

let cluster: TestCluster;
let dispatcher: Dispatcher;
let callbacks: http.Server;
let callbackUrl: string;
let standalone: MetricsServer;

beforeAll(async () => {
  cluster = await startCluster();
  dispatcher = await startDispatcher({ natsUrl: cluster.nats.url, logger: silent, callbackTimeoutMs: 2_000, retryIntervalMs: 500 });
  callbacks = http.createServer((req, res) => req.resume().on("end", () => res.writeHead(200).end()));
  await new Promise<void>((r) => callbacks.listen(0, "127.0.0.1", r));
  callbackUrl = `http://127.0.0.1:${(callbacks.address() as net.AddressInfo).port}/done`;
  standalone = await startMetricsServer("127.0.0.1:0");
});
afterAll(async () => {
  await standalone?.stop();
  await dispatcher?.stop();
  await cluster?.stop();
  await new Promise((r) => callbacks?.close(r));
});

type Scrape = Map<string, ParsedFamily> & { text: string };

async function scrape(url = `${cluster.url}/metrics`): Promise<Scrape> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return Object.assign(new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])), { text });
}

/** `name_count{...} N` lines of the text (the parser drops a labelled histogram's labels and counts). */
function histogramCounts(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const line = new RegExp(`^${name}_count(?:\\{(.*)\\})? (\\S+)$`, "gm");
  return [...text.matchAll(line)].map((m) => ({
    labels: Object.fromEntries([...(m[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!])),
    value: Number(m[2]),
  }));
}

/** The sum of a family's samples whose labels include `labels`; histograms: their count. */
function total(families: Scrape, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  if (!f) return 0;
  const samples = f.type === "HISTOGRAM" ? histogramCounts(families.text, name) : f.metrics.map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
  return samples.filter((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v)).reduce((n, m) => n + m.value, 0);
}

const waitGone = async (guid: string): Promise<void> => {
  await expect.poll(() => cluster.getTask(guid), { timeout: 20_000, interval: 100 }).toBeUndefined();
};

describe("/metrics", () => {
  it("parses as Prometheus text and lists every documented family", async () => {
    const families = await scrape();
    for (const [name, type] of [
      ["diego_api_requests_total", "COUNTER"],
      ["diego_api_request_duration_seconds", "HISTOGRAM"],
      ["diego_tasks", "GAUGE"],
      ["diego_task_index_bytes", "GAUGE"],
      ["diego_auction_batch_size", "HISTOGRAM"],
      ["diego_auction_duration_seconds", "HISTOGRAM"],
      ["diego_auction_tasks_total", "COUNTER"],
      ["diego_container_create_duration_seconds", "HISTOGRAM"],
      ["diego_task_start_duration_seconds", "HISTOGRAM"],
      ["diego_callback_attempts_total", "COUNTER"],
      ["diego_cell_capacity", "GAUGE"],
      ["diego_cell_used", "GAUGE"],
      ["diego_nats_reconnects_total", "COUNTER"],
      ["process_cpu_seconds_total", "COUNTER"],
      ["nodejs_eventloop_lag_seconds", "GAUGE"],
    ] as const) {
      expect(families.get(name)?.type, name).toBe(type);
    }
    const cellId = cluster.cells[0]!.cellId;
    expect(total(families, "diego_cell_capacity", { cell: cellId, resource: "containers" })).toBe(64);
    expect(total(families, "diego_cell_capacity", { cell: cellId, resource: "memory_mb" })).toBe(4096);
    // The index's arena holds what it keeps within the slabs it has.
    const [live, slabs] = [total(families, "diego_task_index_bytes", { kind: "live" }), total(families, "diego_task_index_bytes", { kind: "slabs" })];
    expect(live).toBeLessThanOrEqual(slabs);
  });

  it("moves its counters when a task runs through a real cell and its callback is delivered", async () => {
    const before = await scrape();
    const guid = `metrics-${process.pid}-${Date.now()}`;
    const res = await cluster.createTask({
      task_guid: guid,
      domain: "metrics-test",
      stack: "lucid64",
      action: { run: { path: "/bin/sh", args: ["-c", "sleep 1"] } },
      completion_callback_url: callbackUrl,
    });
    expect(res.status).toBe(201);

    // While it runs, the cell holds a container for it and the index shows it RUNNING.
    await expect
      .poll(async () => {
        const m = await scrape();
        return [total(m, "diego_tasks", { state: "RUNNING" }), total(m, "diego_cell_used", { resource: "containers" })];
      }, { timeout: 20_000, interval: 100 })
      .toEqual([1, 1]);

    await waitGone(guid); // completed, called back (200) and resolved
    const after = await scrape();
    const grew = (name: string, labels: Record<string, string> = {}): number => total(after, name, labels) - total(before, name, labels);
    expect(grew("diego_api_requests_total", { route: "/v1/tasks", method: "POST", code: "201" })).toBe(1);
    expect(grew("diego_api_request_duration_seconds", { route: "/v1/tasks", method: "POST" })).toBe(1);
    expect(grew("diego_auction_tasks_total", { result: "placed" })).toBeGreaterThanOrEqual(1);
    expect(grew("diego_auction_batch_size")).toBeGreaterThanOrEqual(1);
    expect(grew("diego_container_create_duration_seconds")).toBe(1);
    expect(grew("diego_task_start_duration_seconds")).toBe(1);
    expect(grew("diego_callback_attempts_total", { outcome: "2xx" })).toBe(1);
    expect(total(after, "diego_tasks", { state: "RUNNING" })).toBe(0);
    // The slot comes back once the container is destroyed, which may be just after the task is gone.
    await expect.poll(async () => total(await scrape(), "diego_cell_used", { resource: "containers" }), { timeout: 10_000, interval: 100 }).toBe(0);
  });

  it("counts an unknown path under one route, not one series per path", async () => {
    for (const p of ["/no/such/a", "/no/such/b"]) await fetch(`${cluster.url}${p}`);
    const families = await scrape();
    const routes = families.get("diego_api_requests_total")!.metrics.map((m) => m.labels!.route);
    expect(routes).toContain("other");
    expect(routes.some((r) => r.startsWith("/no/such"))).toBe(false);
    expect(routes).toContain("/v1/tasks/:guid");
  });

  it("labels each REST request with its route's template, whatever the guids in its path", async () => {
    const calls: Array<[method: string, path: string, route: string, code: string]> = [
      ["GET", "/v1/tasks/label-a", "/v1/tasks/:guid", "404"],
      ["GET", "/v1/tasks/label-b", "/v1/tasks/:guid", "404"],
      ["POST", "/v1/tasks/label-a/cancel", "/v1/tasks/:guid/cancel", "404"],
      ["GET", "/v1/domains/label-d/tasks", "/v1/domains/:domain/tasks", "200"],
      ["GET", "/v1/tasks?domain=label-d", "/v1/tasks", "200"],
      ["GET", "/v1/desired_lrps/label-p", "/v1/desired_lrps/:guid", "404"],
      ["GET", "/v1/actual_lrps/label-p/index/0", "/v1/actual_lrps/:guid/index/:index", "404"],
      ["PATCH", "/v1/cells", "/v1/cells", "405"],
      ["GET", "/healthz", "/healthz", "200"],
    ];
    const before = await scrape();
    for (const [method, path] of calls) await (await fetch(`${cluster.url}${path}`, { method })).arrayBuffer();
    const after = await scrape();
    const grew = (labels: Record<string, string>): number => total(after, "diego_api_requests_total", labels) - total(before, "diego_api_requests_total", labels);
    for (const [method, , route, code] of calls) {
      expect([route, method, code, grew({ route, method, code })]).toEqual([route, method, code, calls.filter((c) => c[2] === route && c[0] === method).length]);
    }
  });

  it("counts gRPC calls by their grpc-status", async () => {
    const grpcApi = createGrpcApi(cluster.url.replace("http://", ""));
    try {
      const before = await scrape();
      const route = "/diego.v1.TaskService/GetTask";
      expect((await grpcError(grpcApi.getTask("no-such-guid"))).code).toBe(5);
      expect((await grpcApi.listTasks("metrics-nobody")).tasks).toEqual([]);
      const after = await scrape();
      const grew = (labels: Record<string, string>): number => total(after, "diego_api_requests_total", labels) - total(before, "diego_api_requests_total", labels);
      expect(grew({ route, method: "POST", code: "200", grpc_code: "5" })).toBe(1);
      expect(grew({ route: "/diego.v1.TaskService/ListTasks", method: "POST", code: "200", grpc_code: "0" })).toBe(1);
    } finally {
      grpcApi.close();
    }
  });

  it("is served alone on --metrics-listen, with the same registry", async () => {
    const families = await scrape(`http://${standalone.address}/metrics`);
    expect(families.get("diego_cell_capacity")?.type).toBe("GAUGE");
    expect((await fetch(`http://${standalone.address}/v1/tasks`)).status).toBe(404);
  });

  it("is served by `diego dispatcher --metrics-listen`, and a bad address is refused by name", async () => {
    const d = await spawnDiego(["dispatcher", "--nats", cluster.nats.url, "--metrics-listen", "127.0.0.1:0"]);
    try {
      const address = /metrics on (\S+)/.exec(d.readyLine)?.[1];
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
      const families = await scrape(`http://${address}/metrics`);
      expect(families.get("diego_callback_attempts_total")?.type).toBe("COUNTER");
      expect(total(families, "process_cpu_seconds_total")).toBeGreaterThan(0);
    } finally {
      await d.kill("SIGTERM");
    }
    await expect(spawnDiego(["dispatcher", "--nats", cluster.nats.url, "--metrics-listen", "nowhere"])).rejects.toThrow(
      /--metrics-listen must be HOST:PORT/,
    );
  });
});
