// Creates into `diego up` with its auctioneer live, against 404 reads through the same server,
// in the same run (`tsx bench/up-creates.ts [--calls 20000] [--concurrency 50] [--profile DIR]`).
//
// `diego up` runs the receptor, dispatcher, converger, auctioneer, cell and router in one
// process. The tasks ask for a stack no cell has, so each one is auctioned (and failed) while
// the creates go on: the auctioneer's work lands on the same process as the API's. Reads and
// creates alternate in rounds so that load from elsewhere falls on both alike. The client
// is bench/raw-http.ts (raw sockets), which costs little CPU next to the server.
//
// Goal (issue 17): creates/s ≥ 0.3 × 404 reads/s.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { spawnDiego } from "../test/fixtures/receptor.js";
import { combine, runLoad, type LoadResult } from "./load.js";
import { cpuSeconds } from "./proc-cpu.js";
import { summarizeProfiles } from "./profile-summary.js";
import { createRawHttp } from "./raw-http.js";
import { benchTaskJson } from "./receptor-memory.js";

const ROUNDS = 4;

export interface UpCreatesResult {
  reads: LoadResult;
  creates: LoadResult;
  /** creates/s ÷ 404 reads/s. */
  ratio: number;
  /** CPU of the `diego up` process per call, µs. */
  readCpuUs: number;
  createCpuUs: number;
}

export interface UpCreatesOptions {
  calls?: number;
  concurrency?: number;
  profileDir?: string;
  log?: (line: string) => void;
}

export async function measureUpCreates(opts: UpCreatesOptions = {}): Promise<UpCreatesResult> {
  const calls = opts.calls ?? 20_000;
  const concurrency = opts.concurrency ?? 50;
  const log = opts.log ?? (() => undefined);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-bench-up-"));
  const cleanup: Array<() => Promise<unknown> | void> = [() => rm(dataDir, { recursive: true, force: true })];
  try {
    const up = await spawnDiego(
      ["up", "--data-dir", dataDir, "--nats-port", "0", "--listen", "127.0.0.1:0"],
      {},
      opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [],
    );
    cleanup.push(() => up.kill("SIGTERM"));
    const address = /ready on (\S+)/.exec(up.readyLine)![1]!;
    const pid = up.child.pid!;
    const raw = await createRawHttp(address, concurrency);
    cleanup.push(() => raw.close());
    const runId = Date.now().toString(36);
    const body = (i: number): string => JSON.stringify({ ...benchTaskJson(`up-${runId}-${i}`, i), stack: "no-cell-has-this-stack" });
    const expectStatus = (want: number) => (got: number) => (got === want ? undefined : Promise.reject(new Error(`HTTP ${got}, wanted ${want}`)));

    // Warm-up: both paths compiled, the auctioneer awake.
    await runLoad(1000, concurrency, (i) => raw.call("GET", `/v1/tasks/missing-warm-${i}`).then(expectStatus(404)));
    const warm = Array.from({ length: 1000 }, (_, i) => body(-1 - i));
    await runLoad(1000, concurrency, (i) => raw.call("POST", "/v1/tasks", warm[i]).then(expectStatus(201)));

    const reads: LoadResult[] = [];
    const creates: LoadResult[] = [];
    let readCpu = 0;
    let createCpu = 0;
    const chunk = Math.ceil(calls / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      let cpu = cpuSeconds(pid);
      reads.push(await runLoad(chunk, concurrency, (i) => raw.call("GET", `/v1/tasks/missing-${runId}-${round}-${i}`).then(expectStatus(404))));
      readCpu += cpuSeconds(pid) - cpu;
      const bodies = Array.from({ length: chunk }, (_, i) => body(round * chunk + i));
      cpu = cpuSeconds(pid);
      creates.push(await runLoad(chunk, concurrency, (i) => raw.call("POST", "/v1/tasks", bodies[i]).then(expectStatus(201))));
      createCpu += cpuSeconds(pid) - cpu;
      log(`round ${round + 1}: ${Math.round(reads.at(-1)!.perSecond)} reads/s, ${Math.round(creates.at(-1)!.perSecond)} creates/s`);
    }
    const r = combine(reads);
    const c = combine(creates);
    for (const x of [r, c]) if (x.errors > 0) throw new Error(`${x.errors} calls failed: ${String(x.firstError)}`);
    return {
      reads: r,
      creates: c,
      ratio: c.perSecond / r.perSecond,
      readCpuUs: (readCpu * 1e6) / r.calls,
      createCpuUs: (createCpu * 1e6) / c.calls,
    };
  } finally {
    for (const c of cleanup.reverse()) await c();
  }
}

export function formatUpCreates(r: UpCreatesResult): string {
  const f = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const row = (what: string, x: LoadResult, cpuUs: number): string =>
    `| ${what} | ${f(x.perSecond)}/s | ${f(x.p50Ms, 1)} ms | ${f(x.p99Ms, 1)} ms | ${f(cpuUs)} µs |`;
  return [
    `| diego up, auctioneer live, ${f(r.reads.calls)} calls each, raw-socket client | rate | p50 | p99 | up's CPU per call |`,
    "|---|---:|---:|---:|---:|",
    row("REST GET /v1/tasks/:guid, missing (404)", r.reads, r.readCpuUs),
    row("REST POST /v1/tasks (a stack no cell has)", r.creates, r.createCpuUs),
    "",
    `creates/s ÷ 404 reads/s: ${f(r.ratio, 2)} (goal ≥ 0.30); 1-minute load average ${f(os.loadavg()[0]!, 1)}.`,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = (flag: string): string | undefined => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const profileDir = arg("--profile") && path.resolve(arg("--profile")!);
  const result = await measureUpCreates({
    calls: Number(arg("--calls") ?? 20_000),
    concurrency: Number(arg("--concurrency") ?? 50),
    profileDir,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  console.log(formatUpCreates(result));
  if (profileDir) console.log(`\n${await summarizeProfiles(profileDir)}`);
}
