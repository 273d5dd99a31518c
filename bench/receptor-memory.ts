// The receptor's memory at scale (`tsx bench/receptor-memory.ts [--tasks 100000]`): a real
// nats-server, the receptor as its own process, and 100,000 tasks created through its REST API.
// Reports the receptor's RSS and V8 heap before and after (from /proc and its /metrics), the
// bytes per task, and how long listing them all takes in REST and gRPC (time to the last byte
// of the reply, not the client's parsing).
//
// `measureReceptorMemory` is exported for bench:load's "RSS at 100,000 stored tasks" row.

import http from "node:http";
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { startEmbeddedNats } from "../src/nats/index.js";
import { FastReader } from "../src/model/index.js";
import { spawnDiego } from "../test/fixtures/receptor.js";
import { medianMs, runLoad } from "./load.js";
import { cpuSeconds } from "./proc-cpu.js";
import { summarizeProfiles } from "./profile-summary.js";
import { createRawHttp } from "./raw-http.js";

export interface MemoryResult {
  tasks: number;
  /** The receptor's resident set, MB: ready with no tasks, and with every task indexed. */
  rssBeforeMb: number;
  rssAfterMb: number;
  /** V8 heap in use, MB (prom-client's nodejs_heap_size_used_bytes). */
  heapBeforeMb: number;
  heapAfterMb: number;
  /** (rssAfter - rssBefore) / tasks. */
  rssBytesPerTask: number;
  heapBytesPerTask: number;
  /** Creates per second through REST while filling. */
  createsPerSecond: number;
  /** Medians: REST GET /v1/tasks and gRPC ListTasks, to the reply's last byte. */
  restListMs: number;
  grpcListMs: number;
  /** The receptor's CPU time per list (user + system): what the list costs whatever the load. */
  restListCpuMs: number;
  grpcListCpuMs: number;
  /** The index's arena with every task indexed (and its JSON made), MB. */
  arenaLiveMb: number;
  arenaSlabsMb: number;
  /** RSS after the lists (each list's reply is built while it is sent). */
  rssAfterListsMb: number;
}

export interface MemoryOptions {
  tasks?: number;
  /** A nats-server to use; without one, an embedded one in a temporary directory. */
  natsUrl?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Writes a V8 CPU profile of the receptor into this directory. */
  profileDir?: string;
}

/** The TaskCreateRequest every create sends (as bench/api.ts's); about 400 bytes of JSON. */
export function benchTaskJson(guid: string, i: number): Record<string, unknown> {
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

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
};

function get(address: string, p: string): Promise<{ status: number; body: Buffer }> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    http
      .get({ host, port: Number(port), path: p, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

async function heapMb(address: string): Promise<number> {
  const { body } = await get(address, "/metrics");
  const m = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(body.toString());
  return m ? Number(m[1]) / 2 ** 20 : NaN;
}

/** The task index's arena (diego_task_index_bytes), MB: live bytes and slabs held. */
async function arenaMb(address: string): Promise<{ live: number; slabs: number }> {
  const text = (await get(address, "/metrics")).body.toString();
  const value = (kind: string): number => Number(new RegExp(`^diego_task_index_bytes\\{kind="${kind}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { live: value("live"), slabs: value("slabs") };
}

/** GET /v1/tasks to its last byte (counted, not kept: the client's copying is not the list's). */
function restList(address: string): Promise<number> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    http
      .get({ host, port: Number(port), path: "/v1/tasks", agent: false }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET /v1/tasks: HTTP ${res.statusCode}`));
        let bytes = 0;
        let last = 0;
        res.on("data", (c: Buffer) => ((bytes += c.length), (last = c[c.length - 1]!)));
        res.on("end", () => (last === 0x5d ? resolve(bytes) : reject(new Error("the list did not end with ]"))));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

/** ListTasks over gRPC (h2c) to the last byte; returns the number of tasks in the reply. */
function grpcList(session: http2.ClientHttp2Session): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": "/diego.v1.TaskService/ListTasks", "content-type": "application/grpc", te: "trailers" });
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("trailers", (t) => {
      if (t["grpc-status"] !== "0") reject(new Error(`ListTasks: grpc-status ${t["grpc-status"]} ${t["grpc-message"]}`));
    });
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      // The 5-byte envelope, then repeated field 1: count the tasks without decoding them.
      const r = new FastReader(body.subarray(5));
      let n = 0;
      while (r.pos < r.len) {
        const tag = r.uint32();
        if (tag >>> 3 === 1) n++;
        r.skip(tag & 7, tag >>> 3);
      }
      resolve(n);
    });
    stream.on("error", reject);
    stream.end(Buffer.alloc(5));
  });
}

export async function measureReceptorMemory(opts: MemoryOptions = {}): Promise<MemoryResult> {
  const tasks = opts.tasks ?? 100_000;
  const log = opts.log ?? (() => undefined);
  const cleanup: Array<() => Promise<unknown> | void> = [];
  try {
    let natsUrl = opts.natsUrl;
    if (!natsUrl) {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-bench-memory-"));
      cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
      const nats = await startEmbeddedNats({ dataDir });
      cleanup.push(() => nats.stop());
      natsUrl = nats.url;
    }
    const receptor = await spawnDiego(
      ["receptor", "--nats", natsUrl, "--listen", "127.0.0.1:0"],
      {},
      opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [],
    );
    cleanup.push(() => receptor.kill("SIGTERM"));
    const address = /ready on (\S+)/.exec(receptor.readyLine)![1]!;
    const pid = receptor.child.pid!;
    const raw = await createRawHttp(address, 32);
    cleanup.push(() => raw.close());
    // Windows as large as a 100,000-task reply, as gRPC's own clients grow them (BDP probing):
    // with HTTP/2's default 64 KiB, the client's window updates would set the pace.
    const session = http2.connect(`http://${address}`, { settings: { initialWindowSize: 2 ** 31 - 1 } });
    session.on("connect", () => session.setLocalWindowSize(2 ** 31 - 1));
    cleanup.push(() => void session.close());

    // Warm-up: the code paths the fill and the lists take, so their compiled code is in "before".
    await restList(address);
    await grpcList(session);
    await new Promise((r) => setTimeout(r, 1000));
    const rssBeforeMb = rssMb(pid);
    const heapBeforeMb = await heapMb(address);

    const runId = Date.now().toString(36);
    log(`creating ${tasks} tasks through REST...`);
    const bodies = (from: number, count: number): string[] =>
      Array.from({ length: count }, (_, k) => JSON.stringify(benchTaskJson(`mem-${runId}-${from + k}`, from + k)));
    let created = 0;
    let seconds = 0;
    for (let from = 0; from < tasks; from += 10_000) {
      const batch = bodies(from, Math.min(10_000, tasks - from));
      const r = await runLoad(batch.length, 32, (i) => raw.call("POST", "/v1/tasks", batch[i]).then((s) => (s === 201 ? undefined : Promise.reject(new Error(`HTTP ${s}`)))));
      if (r.errors > 0) throw new Error(`${r.errors} creates failed: ${String(r.firstError)}`);
      created += batch.length;
      seconds += r.seconds;
    }
    // The receptor renders each task's JSON once writes pause; a first list makes any not made
    // yet, so that "after" holds every task's JSON as it would in use.
    await new Promise((r) => setTimeout(r, 2000));
    await restList(address);
    await new Promise((r) => setTimeout(r, 1000));
    const rssAfterMb = rssMb(pid);
    const heapAfterMb = await heapMb(address);
    const arena = await arenaMb(address);

    const listed = await grpcList(session);
    if (listed !== tasks) throw new Error(`gRPC ListTasks listed ${listed} tasks, wanted ${tasks}`);
    let cpu = cpuSeconds(pid);
    const restListMs = await medianMs(5, () => restList(address));
    const restListCpuMs = ((cpuSeconds(pid) - cpu) * 1000) / 5;
    cpu = cpuSeconds(pid);
    const grpcListMs = await medianMs(5, () => grpcList(session));
    const grpcListCpuMs = ((cpuSeconds(pid) - cpu) * 1000) / 5;
    const rssAfterListsMb = rssMb(pid);
    return {
      tasks,
      rssBeforeMb,
      rssAfterMb,
      heapBeforeMb,
      heapAfterMb,
      rssBytesPerTask: ((rssAfterMb - rssBeforeMb) * 2 ** 20) / tasks,
      heapBytesPerTask: ((heapAfterMb - heapBeforeMb) * 2 ** 20) / tasks,
      createsPerSecond: created / seconds,
      restListMs,
      grpcListMs,
      arenaLiveMb: arena.live,
      arenaSlabsMb: arena.slabs,
      restListCpuMs,
      grpcListCpuMs,
      rssAfterListsMb,
    };
  } finally {
    for (const c of cleanup.reverse()) await c();
  }
}

export function formatMemoryResult(r: MemoryResult): string {
  const f = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  return [
    `| receptor memory, ${f(r.tasks)} tasks created through REST (${f(r.createsPerSecond)}/s) | before | after | per task |`,
    "|---|---:|---:|---:|",
    `| RSS | ${f(r.rssBeforeMb, 1)} MB | ${f(r.rssAfterMb, 1)} MB | ${f(r.rssBytesPerTask)} B |`,
    `| V8 heap used | ${f(r.heapBeforeMb, 1)} MB | ${f(r.heapAfterMb, 1)} MB | ${f(r.heapBytesPerTask)} B |`,
    `| the index's arena: records and their JSON (slabs held) | | ${f(r.arenaLiveMb, 1)} MB (${f(r.arenaSlabsMb, 1)} MB) | ${f((r.arenaLiveMb * 2 ** 20) / r.tasks)} B |`,
    "",
    `| list of ${f(r.tasks)} tasks (5 of each) | to the last byte, median | receptor CPU, mean |`,
    "|---|---:|---:|",
    `| REST GET /v1/tasks | ${f(r.restListMs, 1)} ms | ${f(r.restListCpuMs)} ms |`,
    `| gRPC ListTasks | ${f(r.grpcListMs, 1)} ms | ${f(r.grpcListCpuMs)} ms |`,
    "",
    `RSS after the lists: ${f(r.rssAfterListsMb, 1)} MB.`,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const i = process.argv.indexOf("--tasks");
  const tasks = i > 0 ? Number(process.argv[i + 1]) : 100_000;
  const p = process.argv.indexOf("--profile");
  const profileDir = p > 0 ? path.resolve(process.argv[p + 1] ?? "bench-profile") : undefined;
  const result = await measureReceptorMemory({ tasks, profileDir, log: (l) => process.stderr.write(`${l}\n`) });
  console.log(formatMemoryResult(result));
  if (profileDir) console.log(`\n${await summarizeProfiles(profileDir)}`);
}
