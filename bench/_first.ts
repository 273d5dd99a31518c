import { spawn } from "node:child_process";
import { connectNats, openTasksBucket, startEmbeddedNats } from "../src/nats/index.js";
import { createTaskStore } from "../src/store/index.js";
import { decodeTaskCreateRequest } from "../src/model/index.js";
import { runLoad } from "./load.js";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
const N = 100000;
const dir = await mkdtemp(os.tmpdir() + "/ab-");
const nats = await startEmbeddedNats({ dataDir: dir, port: 0 } as never);
const child = spawn(process.execPath, [...(process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/exp/fprof"] : []), process.env.BIN ?? "/work/main/bin/diego.js", "receptor", "--nats", nats.url, "--listen", "127.0.0.1:0"], { env: { ...process.env, DIEGO_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "inherit"] });
const addr = await new Promise<string>((r) => { let o = ""; child.stdout!.on("data", (c) => { o += c; const m = /ready on (\S+)/.exec(o); if (m) r(m[1]!); }); });
const nc = await connectNats({ url: nats.url, name: "fill" });
await openTasksBucket(nc);
const store = createTaskStore(nc);
const t = (g: string, i: number) => ({ task_guid: g, domain: `bench-${i % 10}`, stack: "lucid64", root_fs: "docker:///cloudfoundry/lucid64#v1", env: [{ name: "BENCH", value: "1" }], cpu_weight: 50, disk_mb: 1024, memory_mb: 128, action: { run: { path: "/bin/sh", args: ["-c", "echo hello"], user: "vcap" } }, result_file: "/tmp/result", log_guid: g, log_source: "BENCH", annotation: "benchmark task" });
const t0 = Date.now();
await runLoad(N, 200, (i) => store.create(decodeTaskCreateRequest(t(`fill-${i}`, i))));
console.log("filled in", Date.now() - t0, "ms");
while (((await (await fetch(`http://${addr}/v1/domains/bench-3/tasks`)).json()) as unknown[]).length < N / 10) await new Promise((r) => setTimeout(r, 20));
console.log("caught up in", Date.now() - t0, "ms");
const list = async (path: string) => { const s = performance.now(); const r = await fetch(`http://${addr}${path}`); const b = await r.arrayBuffer(); return [performance.now() - s, b.byteLength] as const; };
for (let k = 0; k < 1; k++) { const [ms, bytes] = await list("/v1/tasks"); console.log("list", k, ms.toFixed(0), "ms", bytes, "bytes"); }
for (let k = 0; k < 0; k++) { const [ms] = await list("/v1/tasks"); console.log("after pause list", k, ms.toFixed(0), "ms"); }
child.kill("SIGTERM"); await new Promise((r) => child.once("exit", r)); await nc.close(); await nats.stop(); process.exit(0);
