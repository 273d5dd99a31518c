// A quick look at one router row without the whole bench: NATS, the instance stand-ins and one
// `diego router` process (optionally under --cpu-prof), then autocannon against one.bench or
// three.bench. For profiling and A/B checks while working on the proxy; bench/router.ts is the
// measurement of record.
//
//   tsx bench/router-lab.ts [--target one|three] [--duration 5] [--connections 50] [--nginx]
//                           [--workers N (nginx)] [--prof DIR] [-- router flags, e.g. --router-processes 2]
//
// The router is the compiled one (dist/, built when sources are newer); LAB_TSX=1 runs the
// sources through tsx instead (to compare edits without a build). Besides the rate, each row
// prints the CPU time per request of the router (or nginx, with their child processes), the
// instance process and this client process.

import { spawn, type ChildProcess } from "node:child_process";
import { openSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { decodeDesiredLRPCreateRequest } from "../src/model/lrp-json.js";
import { connectNats, openLrpBuckets, startEmbeddedNats } from "../src/nats/index.js";
import { createLrpStore } from "../src/store/lrp-store.js";
import { freePort } from "../test/fixtures/ports.js";
import buildDist from "../test/support/build-dist.js";
import { cpuSeconds } from "./proc-cpu.js";

const REPO = path.resolve(import.meta.dirname, "..");
const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
const own = sep >= 0 ? argv.slice(0, sep) : argv;
const routerExtra = sep >= 0 ? argv.slice(sep + 1) : [];
const opt = (name: string): string | undefined => {
  const i = own.indexOf(`--${name}`);
  return i >= 0 ? own[i + 1] : undefined;
};
const TARGET = opt("target") ?? "one";
const DURATION = Number(opt("duration") ?? 5);
const CONNECTIONS = Number(opt("connections") ?? 50);
const PROF = opt("prof");
const NGINX = own.includes("--nginx");
const WORKERS = Number(opt("workers") ?? 1);

/** The process and its descendants (router processes, nginx workers). */
function tree(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // gone
  }
  return [pid, ...kids.flatMap(tree)];
}
function meterCpu(groups: Record<string, number>): { read(): Record<string, number> } {
  const pids = Object.fromEntries(Object.entries(groups).map(([k, p]) => [k, tree(p)]));
  const sum = (k: string): number => pids[k]!.reduce((a, p) => a + cpuSeconds(p), 0);
  const start = Object.fromEntries(Object.keys(pids).map((k) => [k, sum(k)]));
  return { read: () => Object.fromEntries(Object.keys(pids).map((k) => [k, sum(k) - start[k]!])) };
}

const children: ChildProcess[] = [];
function start(cmd: string, args: string[], ready: (line: string) => boolean, stderrFile?: string): Promise<string> {
  const child = spawn(cmd, args, { cwd: REPO, stdio: ["ignore", "pipe", stderrFile ? openSync(stderrFile, "a") : "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n").find(ready);
      if (line) resolve(line);
    });
    child.once("exit", (code) => reject(new Error(`${cmd} exited (${code})`)));
  });
}

async function measure(name: string, port: number, host: string, pids: Record<string, number>): Promise<void> {
  const opts = { url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, headers: { host } };
  await autocannon({ ...opts, duration: 2 });
  const cpu = meterCpu({ ...pids, client: process.pid });
  const r = await autocannon({ ...opts, duration: DURATION });
  const used = Object.entries(cpu.read()).map(([k, v]) => `${k} ${((1e6 * v) / r.requests.total).toFixed(0)}`).join(", ");
  console.log(`${name}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors + r.non2xx + r.timeouts}; CPU µs/request: ${used}`);
}

if (!process.env.LAB_TSX) buildDist();
const dir = await mkdtemp(path.join(os.tmpdir(), "diego-router-lab-"));
const nats = await startEmbeddedNats({ dataDir: path.join(dir, "nats"), port: 0 });
try {
  const backends = JSON.parse(await start(process.execPath, ["--import", "tsx", "bench/router-backend.ts", "3"], (l) => l.startsWith("["))) as number[];
  const nc = await connectNats({ url: nats.url, name: "router-lab" });
  const store = createLrpStore(nc, await openLrpBuckets(nc));
  const ports = TARGET === "one" ? backends.slice(0, 1) : backends;
  await store.desire(decodeDesiredLRPCreateRequest({
    process_guid: "lab", domain: "bench", rootfs: "preloaded:cflinuxfs2", instances: ports.length, ports: [8080],
    routes: { "cf-router": [{ hostnames: ["lab.bench"], port: 8080 }] }, action: { run: { path: "/bin/httpd" } },
  }));
  for (const [i, p] of ports.entries()) {
    const key = { cellId: "lab-cell", instanceGuid: `lab-${i}` };
    await store.claim("lab", i, key);
    await store.start("lab", i, key, { address: "127.0.0.1", ports: [{ containerPort: 8080, hostPort: p }] });
  }
  if (NGINX) {
    const np = await freePort();
    const up = `upstream u { ${ports.map((p) => `server 127.0.0.1:${p};`).join(" ")} keepalive 64; }`;
    writeFileSync(path.join(dir, "nginx.conf"), `worker_processes ${WORKERS}; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log ${dir}/nginx-access.log; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
keepalive_timeout 75s; keepalive_requests 100000; ${up}
server { listen 127.0.0.1:${np}; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Request-Start $msec; } } }`);
    children.push(spawn("nginx", ["-c", path.join(dir, "nginx.conf"), "-p", dir, "-g", "daemon off;"], { stdio: "inherit" }));
    for (let i = 0; i < 200 && !(await fetch(`http://127.0.0.1:${np}/`).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 25));
    await measure(`nginx, ${TARGET}`, np, "lab.bench", { nginx: children.at(-1)!.pid!, backend: children[0]!.pid! });
  }
  const routerPort = await freePort();
  const prof = PROF ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(PROF)] : [];
  await start(
    process.execPath,
    [...prof, ...(process.env.LAB_TSX ? ["--import", "tsx", "src/cli/main.ts"] : ["bin/diego.js"]), "router", "--nats", nats.url, "--router-listen", `127.0.0.1:${routerPort}`, "--router-register", "off", "--log-format", "json", ...routerExtra],
    (l) => l.includes("ready"),
    path.join(dir, "router-access.log"),
  );
  await measure(`router, ${TARGET}`, routerPort, "lab.bench", { router: children.at(-1)!.pid!, backend: children[0]!.pid! });
  store.close();
  await nc.close();
} finally {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
}
