// The Task API benchmark (`npm run bench:api`): a real nats-server, the receptor as its own
// process (as deployed; client and server still share this machine's cores), and this process
// as the client. Prints rates, latencies, list times and where the CPU went, then a markdown
// table for the README.
//
//   tsx bench/api.ts [--tasks 20000] [--concurrency 50] [--profile DIR]
//
// Each group of measurements runs in interleaved rounds, so that load from elsewhere on the
// machine falls on all of them alike and the ratios stay fair. Two last groups repeat rows with
// clients that cost little CPU, to show the server's own capacity: REST from raw sockets
// (raw-http.ts), and gRPC from gRPC's C core (grpc-load.py, Debian's python3-grpcio).
// --profile writes a V8 CPU profile of the receptor into DIR and prints its hottest parts.

import http from "node:http";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { TaskCreateRequest } from "../src/gen/grpc-js/diego/v1/task.js";
import { decodeTaskCreateRequest } from "../src/model/index.js";
import { connectNats, openTasksBucket, startEmbeddedNats } from "../src/nats/index.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { createTaskStore, encodeRecord, nowNanos, transitions } from "../src/store/index.js";
import { spawnDiego } from "../test/fixtures/receptor.js";
import { createGrpcApi, type GrpcApi } from "../test/receptor/grpc-client.js";
import { combine, medianMs, runLoad, type LoadResult } from "./load.js";
import { meterCpu, meterSteal } from "./proc-cpu.js";
import { cCoreGrpcAvailable, runCCoreGrpc } from "./c-core-grpc.js";
import { createRawHttp, type RawHttp } from "./raw-http.js";
import { summarizeProfiles } from "./profile-summary.js";

const ROUNDS = 4;
/** The scale for listing: the bucket is filled up to this many tasks at the end. */
const LIST_SCALE = 100_000;
const WARM_UP = 1000;

interface Options {
  tasks: number;
  concurrency: number;
  profileDir?: string;
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { tasks: 20_000, concurrency: 50 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--tasks") opts.tasks = Number(value);
    else if (flag === "--concurrency") opts.concurrency = Number(value);
    else if (flag === "--profile") opts.profileDir = path.resolve(value ?? "bench-profile");
    else continue;
    i++;
  }
  return opts;
}

/** The TaskCreateRequest every create sends, as REST JSON; about 400 bytes. */
function taskJson(guid: string, i: number): Record<string, unknown> {
  return {
    task_guid: guid,
    domain: `bench-${i % 10}`,
    stack: "lucid64",
    root_fs: "docker:///cloudfoundry/lucid64#v1",
    env: [{ name: "BENCH", value: "1" }],
    cpu_weight: 50,
    disk_mb: 1024,
    memory_mb: 128,
    action: { run: { path: "/bin/sh", args: ["-c", "echo hello from the benchmark"], user: "vcap" } },
    result_file: "/tmp/result",
    log_guid: guid,
    log_source: "BENCH",
    annotation: "benchmark task",
  };
}

/** The same request for the gRPC client (ts-proto reads the snake_case JSON names too). */
const grpcRequest = (guid: string, i: number): TaskCreateRequest => TaskCreateRequest.fromJSON(taskJson(guid, i));

interface Rest {
  call(method: string, path: string, body?: string): Promise<{ status: number; body: string }>;
  /** Like call, but fails unless the status is `status`. */
  expect(status: number, method: string, path: string, body?: string): Promise<void>;
  close(): void;
}

/** node:http with a keep-alive agent: one socket per concurrent caller, reused. */
function createRest(address: string, sockets: number): Rest {
  const [host, port] = address.split(":");
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const call: Rest["call"] = (method, p, body) =>
    new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders =
        body === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) };
      const req = http.request({ host, port: Number(port), method, path: p, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  return {
    call,
    async expect(status, method, p, body) {
      const r = await call(method, p, body);
      if (r.status !== status) throw new Error(`${method} ${p}: HTTP ${r.status}, wanted ${status}: ${r.body.slice(0, 200)}`);
    },
    close: () => agent.destroy(),
  };
}

/** One kind of call, measured in rounds. */
interface Series {
  what: string;
  total: number;
  /** Builds the requests of calls [from, from + count) before the clock starts. */
  prepare?(from: number, count: number): void | Promise<void>;
  call(i: number): Promise<unknown>;
  /** Instead of call(): runs calls [from, from + count) in another process; its CPU is the client's. */
  runElsewhere?(from: number, count: number): Promise<{ result: LoadResult; cpuSeconds: number }>;
}

interface Row {
  what: string;
  result?: LoadResult;
  ms?: number;
  cpu?: Record<string, number>;
}

/**
 * A series whose requests (TaskCreateRequest objects, JSON bodies) are built before each round,
 * as load generators such as wrk or ghz send a body made in advance: building them is the
 * client's work, not the server's, and the client shares the server's two cores.
 */
function prebuilt<T>(what: string, total: number, build: (i: number) => T, send: (req: T) => Promise<unknown>): Series {
  let ready = new Map<number, T>();
  return {
    what,
    total,
    prepare(from, count) {
      ready = new Map(Array.from({ length: count }, (_, k) => [from + k, build(from + k)]));
    },
    call: (i) => send(ready.get(i) ?? build(i)),
  };
}

type CpuSeconds = Record<string, number>;

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const addCpu = (sum: CpuSeconds, more: CpuSeconds): CpuSeconds => {
  for (const [k, v] of Object.entries(more)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
};

interface Bench {
  opts: Options;
  pids: Record<string, number>;
  rows: Row[];
  notes: string[];
}

/** Runs the series in turns, ROUNDS times; returns each one's pooled result and CPU use. */
async function rounds(b: Bench, series: Series[]): Promise<Map<string, { result: LoadResult; cpu: CpuSeconds }>> {
  const parts = new Map(series.map((x) => [x.what, { results: [] as LoadResult[], cpu: {} as CpuSeconds }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const x of series) {
      const chunk = Math.ceil(x.total / ROUNDS);
      await x.prepare?.(round * chunk, chunk);
      const meter = meterCpu(b.pids);
      const elsewhere = await x.runElsewhere?.(round * chunk, chunk);
      const result = elsewhere?.result ?? (await runLoad(chunk, b.opts.concurrency, (i) => x.call(round * chunk + i)));
      if (result.errors > 0) throw new Error(`${x.what}: ${result.errors} calls failed, first: ${String(result.firstError)}`);
      const part = parts.get(x.what)!;
      part.results.push(result);
      addCpu(part.cpu, meter.read());
      if (elsewhere) addCpu(part.cpu, { client: elsewhere.cpuSeconds });
    }
  }
  return new Map([...parts].map(([what, p]) => [what, { result: combine(p.results), cpu: p.cpu }]));
}

function addRow(b: Bench, what: string, measured: { result: LoadResult; cpu: CpuSeconds }): LoadResult {
  b.rows.push({ what, ...measured });
  process.stderr.write(`  ${what}: ${fmt(measured.result.perSecond)}/s\n`);
  return measured.result;
}

async function timeList(b: Bench, what: string, times: number, fn: () => Promise<unknown>): Promise<void> {
  const meter = meterCpu(b.pids);
  const ms = await medianMs(times, fn);
  b.rows.push({ what: `${what} (median of ${times})`, ms, cpu: meter.read() });
  process.stderr.write(`  ${what}: ${fmt(ms, 1)} ms\n`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const { tasks, concurrency } = opts;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-bench-api-"));
  const nats = await startEmbeddedNats({ dataDir });
  const cleanup: Array<() => Promise<unknown> | void> = [() => rm(dataDir, { recursive: true, force: true }), () => nats.stop()];
  try {
    const receptor = await spawnDiego(
      ["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"],
      {},
      opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [],
    );
    cleanup.push(() => receptor.kill("SIGTERM"));
    const address = /ready on (\S+)/.exec(receptor.readyLine)![1]!;
    const grpcApi = createGrpcApi(address, { "grpc.max_receive_message_length": -1 });
    cleanup.push(() => grpcApi.close());
    const rest = createRest(address, concurrency);
    cleanup.push(() => rest.close());
    const nc = await connectNats({ url: nats.url, name: "bench-raw-kv" });
    cleanup.push(() => nc.drain().catch(() => undefined));
    const kv = await new Kvm(jetstream(nc)).create("bench_raw", { history: 1, storage: "file" });
    const raw = await createRawHttp(address, concurrency);
    cleanup.push(() => raw.close());

    const b: Bench = { opts, pids: { receptor: receptor.child.pid!, "nats-server": nats.pid, client: process.pid }, rows: [], notes: [] };
    process.stderr.write(`receptor on ${address}, nats ${nats.url}; ${tasks} calls per row at concurrency ${concurrency}\n`);
    await runBench(b, { address, grpcApi, rest, raw, kv, nc });
  } finally {
    for (const c of cleanup.reverse()) await c();
  }
  if (opts.profileDir) console.log(`\n${await summarizeProfiles(opts.profileDir)}`);
}

interface Clients {
  address: string;
  grpcApi: GrpcApi;
  rest: Rest;
  raw: RawHttp;
  kv: KV;
  nc: NatsConnection;
}

/** ListCells and CreateTask from bench/grpc-load.py, with the raw KV puts between them. */
function cCoreSeries(b: Bench, address: string, runId: string, kvSeries: Series): Series[] {
  const { tasks, concurrency } = b.opts;
  let requests: Uint8Array[] = [];
  const unused = (): Promise<unknown> => Promise.reject(new Error("runs in grpc-load.py"));
  return [
    {
      what: "cCoreTrivial",
      total: tasks,
      call: unused,
      runElsewhere: (_from, count) => runCCoreGrpc(address, "/diego.v1.CellService/ListCells", concurrency, count),
    },
    {
      what: "cCoreCreate",
      total: tasks,
      prepare(from, count) {
        requests = Array.from({ length: count }, (_, k) => TaskCreateRequest.encode(grpcRequest(`ccore-${runId}-${from + k}`, from + k)).finish());
      },
      call: unused,
      runElsewhere: () => runCCoreGrpc(address, "/diego.v1.TaskService/CreateTask", concurrency, requests),
    },
    kvSeries,
  ];
}

async function runBench(b: Bench, { address, grpcApi, rest, raw, kv, nc }: Clients): Promise<void> {
  const { tasks } = b.opts;
  const runId = Date.now().toString(36);
  const started = Date.now();
  const loadBefore = os.loadavg()[0]!;
  const steal = meterSteal();

  // The storage bound: a record of the same size put straight into a bucket like the tasks one.
  const record = encodeRecord(transitions.newTaskRecord(decodeTaskCreateRequest(taskJson(`grpc-${runId}-00000`, 0)), nowNanos()));
  let kvKey = 0;
  const kvSeries: Series = { what: "kv", total: Math.ceil(tasks / 3), call: () => kv.put(`raw-${kvKey++}`, record) };

  // Warm-up (JIT, connections, buckets), then remove the tasks it created.
  const warm = Array.from({ length: WARM_UP }, (_, i) => `warm-${runId}-${i}`);
  await runLoad(WARM_UP, b.opts.concurrency, (i) =>
    i % 2 ? grpcApi.createTask(grpcRequest(warm[i]!, i)) : rest.expect(201, "POST", "/v1/tasks", JSON.stringify(taskJson(warm[i]!, i))),
  );
  await runLoad(2 * WARM_UP, b.opts.concurrency, (i) => (i % 2 ? grpcApi.listCells() : rest.call("GET", "/v1/cells")));
  await runLoad(WARM_UP, b.opts.concurrency, () => kvSeries.call(0));
  await runLoad(WARM_UP, b.opts.concurrency, (i) => rest.expect(200, "POST", `/v1/tasks/${warm[i]}/cancel`));
  await runLoad(WARM_UP, b.opts.concurrency, (i) => rest.expect(200, "DELETE", `/v1/tasks/${warm[i]}`));

  const g = await rounds(b, [
    { what: "grpcTrivial", total: tasks, call: () => grpcApi.listCells() },
    {
      what: "grpcGet",
      total: tasks,
      call: (i) =>
        grpcApi.getTask(`missing-${runId}-${i}`).then(
          () => Promise.reject(new Error("found a missing task")),
          (err: { code?: number }) => (err.code === 5 ? undefined : Promise.reject(err)),
        ),
    },
    prebuilt("grpcCreate", tasks, (i) => grpcRequest(`grpc-${runId}-${i}`, i), (req) => grpcApi.createTask(req)),
    kvSeries,
  ]);
  const grpcTrivial = addRow(b, "gRPC CellService.ListCells (trivial RPC)", g.get("grpcTrivial")!);
  const grpcGet = addRow(b, "gRPC GetTask of a missing guid (one KV get)", g.get("grpcGet")!);
  const grpcCreates = addRow(b, "gRPC CreateTask", g.get("grpcCreate")!);
  await timeList(b, `REST GET /v1/tasks at ${fmt(tasks)} tasks`, 5, () => rest.expect(200, "GET", "/v1/tasks"));
  await timeList(b, `gRPC ListTasks at ${fmt(tasks)} tasks`, 3, async () => {
    const r = await grpcApi.listTasks();
    if (r.tasks.length !== tasks) throw new Error(`listed ${r.tasks.length} tasks`);
  });
  await timeList(b, `REST GET /v1/domains/D/tasks, ${fmt(tasks / 10)} of ${fmt(tasks)}`, 5, () =>
    rest.expect(200, "GET", "/v1/domains/bench-3/tasks"),
  );

  const r = await rounds(b, [
    { what: "restTrivial", total: tasks, call: () => rest.expect(200, "GET", "/v1/cells") },
    { what: "restGet", total: tasks, call: (i) => rest.expect(404, "GET", `/v1/tasks/missing-${runId}-${i}`) },
    prebuilt(
      "restCreate",
      tasks,
      (i) => JSON.stringify(taskJson(`rest-${runId}-${i}`, i)),
      (body) => rest.expect(201, "POST", "/v1/tasks", body),
    ),
    kvSeries,
  ]);
  const restTrivial = addRow(b, "REST GET /v1/cells (trivial request)", r.get("restTrivial")!);
  addRow(b, "REST GET /v1/tasks/:guid of a missing guid (one KV get)", r.get("restGet")!);
  const restCreates = addRow(b, "REST POST /v1/tasks", r.get("restCreate")!);
  await timeList(b, `REST GET /v1/tasks at ${fmt(2 * tasks)} tasks`, 5, () => rest.expect(200, "GET", "/v1/tasks"));
  await timeList(b, `gRPC ListTasks at ${fmt(2 * tasks)} tasks`, 3, async () => {
    const res = await grpcApi.listTasks();
    if (res.tasks.length !== 2 * tasks) throw new Error(`listed ${res.tasks.length} tasks`);
  });

  // The same REST calls from a client that costs little CPU (bench/raw-http.ts).
  const status = (want: number) => (got: number) =>
    got === want ? undefined : Promise.reject(new Error(`HTTP ${got}, wanted ${want}`));
  const l = await rounds(b, [
    { what: "leanTrivial", total: tasks, call: () => raw.call("GET", "/v1/cells").then(status(200)) },
    prebuilt(
      "leanCreate",
      tasks,
      (i) => JSON.stringify(taskJson(`lean-${runId}-${i}`, i)),
      (body) => raw.call("POST", "/v1/tasks", body).then(status(201)),
    ),
    kvSeries,
  ]);
  const leanTrivial = addRow(b, "REST GET /v1/cells, raw-socket client", l.get("leanTrivial")!);
  const leanCreates = addRow(b, "REST POST /v1/tasks, raw-socket client", l.get("leanCreate")!);

  // The gRPC calls again from gRPC's C core (bench/grpc-load.py), when python3-grpcio is there.
  const c = cCoreGrpcAvailable() ? await rounds(b, cCoreSeries(b, address, runId, kvSeries)) : undefined;
  if (!c) b.notes.push("No C-core gRPC rows: /usr/bin/python3 with python3-grpcio is not installed.");
  const cCoreTrivial = c && addRow(b, "gRPC ListCells, C-core client (Python grpcio)", c.get("cCoreTrivial")!);
  const cCoreCreates = c && addRow(b, "gRPC CreateTask, C-core client (Python grpcio)", c.get("cCoreCreate")!);

  const kvParts = [g.get("kv")!, r.get("kv")!, l.get("kv")!, ...(c ? [c.get("kv")!] : [])];
  const kvPuts = addRow(b, `raw kv.put of a ${record.length}-byte record, client to NATS`, {
    result: combine(kvParts.map((x) => x.result)),
    cpu: kvParts.reduce((sum, x) => addCpu(sum, x.cpu), {} as CpuSeconds),
  });

  const rates = { grpcCreates, grpcTrivial, grpcGet, restCreates, restTrivial, leanCreates, leanTrivial, kvPuts, cCoreCreates, cCoreTrivial };
  await listAtScale(b, grpcApi, rest, nc, LIST_SCALE);
  printReport(b, rates, (Date.now() - started) / 1000, [loadBefore, os.loadavg()[0]!], steal.read());
}

/** Receptor memory, from /proc: the index keeps every task (and its JSON) in memory. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

/**
 * Fills the bucket to `scale` tasks straight through the store (the API's create rate is
 * measured above), waits until the receptor's index has them all, and times the lists.
 */
async function listAtScale(b: Bench, grpcApi: GrpcApi, rest: Rest, nc: NatsConnection, scale: number): Promise<void> {
  const count = async (path: string): Promise<number> => {
    const r = await rest.call("GET", path);
    return (JSON.parse(r.body) as unknown[]).length;
  };
  const have = await count("/v1/tasks");
  const missing = scale - have;
  if (missing <= 0) return;
  await openTasksBucket(nc);
  const store = createTaskStore(nc);
  const runId = Date.now().toString(36);
  process.stderr.write(`  filling the bucket with ${fmt(missing)} more tasks for the ${fmt(scale)}-task lists...\n`);
  const result = await runLoad(missing, 200, (i) =>
    store.create(decodeTaskCreateRequest(taskJson(`fill-${runId}-${i}`, i))),
  );
  if (result.errors > 0) throw new Error(`filling: ${result.errors} creates failed: ${String(result.firstError)}`);
  // The receptor learns of them through its KV watch.
  const deadline = Date.now() + 120_000;
  while ((await count("/v1/domains/bench-3/tasks")) < Math.floor(scale / 10) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
  }
  await timeList(b, `REST GET /v1/tasks at ${fmt(scale)} tasks`, 5, async () => {
    const r = await rest.call("GET", "/v1/tasks");
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
  });
  await timeList(b, `gRPC ListTasks at ${fmt(scale)} tasks`, 3, async () => {
    const res = await grpcApi.listTasks();
    if (res.tasks.length !== scale) throw new Error(`listed ${res.tasks.length} tasks, wanted ${scale}`);
  });
  await timeList(b, `REST GET /v1/domains/D/tasks, ${fmt(scale / 10)} of ${fmt(scale)}`, 5, async () => {
    if ((await count("/v1/domains/bench-3/tasks")) !== scale / 10) throw new Error("domain list incomplete");
  });
  b.notes.push(`Receptor memory (RSS) with ${fmt(scale)} tasks indexed: ${fmt(rssMb(b.pids.receptor!))} MB.`);
}

function printReport(
  b: Bench,
  r: Record<"grpcCreates" | "grpcTrivial" | "grpcGet" | "restCreates" | "restTrivial" | "leanCreates" | "leanTrivial" | "kvPuts", LoadResult> &
    Partial<Record<"cCoreCreates" | "cCoreTrivial", LoadResult>>,
  seconds: number,
  load: [number, number],
  steal: number,
): void {
  const { opts } = b;
  const cpuCell = (cpu?: CpuSeconds): string =>
    cpu ? `${fmt(cpu.receptor!, 1)} / ${fmt(cpu["nats-server"]!, 1)} / ${fmt(cpu.client!, 1)}` : "";
  const perCall = (row: Row): string => (row.result && row.cpu ? `${fmt((1e6 * row.cpu.receptor!) / row.result.calls)} µs` : "");
  const ratio = (a: LoadResult, over: LoadResult): string => fmt(a.perSecond / over.perSecond, 2);
  const cpu = os.cpus();
  const lines = [
    `Task API benchmark: ${fmt(opts.tasks)} calls per row at concurrency ${opts.concurrency}, in ${ROUNDS} interleaved rounds per group;`,
    `${cpu.length} cores (${cpu[0]?.model.trim()}), Node ${process.version}; the receptor in its own process, this client in another,`,
    `nats-server a third, all on the same cores. Took ${fmt(seconds)} s; 1-minute load average ${fmt(load[0], 1)} before, ${fmt(load[1], 1)} after;`,
    `the hypervisor kept ${fmt(100 * steal)}% of the CPU time for other guests (steal).`,
    "",
    "| measurement | rate | p50 | p99 | receptor CPU per call | CPU s: receptor / nats-server / client |",
    "|---|---:|---:|---:|---:|---:|",
    ...b.rows.map((row) =>
      row.result
        ? `| ${row.what} | ${fmt(row.result.perSecond)}/s | ${fmt(row.result.p50Ms, 1)} ms | ${fmt(row.result.p99Ms, 1)} ms | ${perCall(row)} | ${cpuCell(row.cpu)} |`
        : `| ${row.what} | | ${fmt(row.ms!, 1)} ms | | | ${cpuCell(row.cpu)} |`,
    ),
    "",
    "| ratio | value | goal |",
    "|---|---:|---:|",
    `| gRPC creates/s ÷ gRPC trivial RPC/s (ListCells) | ${ratio(r.grpcCreates, r.grpcTrivial)} | ≥ 0.70 |`,
    `| gRPC creates/s ÷ gRPC GetTask-missing/s (one KV get) | ${ratio(r.grpcCreates, r.grpcGet)} | |`,
    `| REST creates/s ÷ REST trivial requests/s (GET /v1/cells) | ${ratio(r.restCreates, r.restTrivial)} | ≥ 0.70 |`,
    `| gRPC creates/s ÷ raw KV puts/s | ${ratio(r.grpcCreates, r.kvPuts)} | ≥ 0.50 |`,
    `| REST creates/s ÷ raw KV puts/s | ${ratio(r.restCreates, r.kvPuts)} | ≥ 0.50 |`,
    `| REST creates/s ÷ trivial requests/s, raw-socket client | ${ratio(r.leanCreates, r.leanTrivial)} | ≥ 0.70 |`,
    `| REST creates/s, raw-socket client ÷ raw KV puts/s | ${ratio(r.leanCreates, r.kvPuts)} | ≥ 0.50 |`,
    ...(r.cCoreCreates && r.cCoreTrivial
      ? [
          `| gRPC creates/s ÷ trivial RPC/s, C-core client | ${ratio(r.cCoreCreates, r.cCoreTrivial)} | ≥ 0.70 |`,
          `| gRPC creates/s, C-core client ÷ raw KV puts/s | ${ratio(r.cCoreCreates, r.kvPuts)} | ≥ 0.50 |`,
        ]
      : []),
  ];
  console.log([...lines, "", ...b.notes].join("\n"));
}

await main();
