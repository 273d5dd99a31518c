// The router benchmark (`npm run bench:router`): requests/s and p50/p99 latency at 50
// connections (autocannon) through `diego router` to one instance and to three, against Debian's
// nginx as a reverse proxy to the same instances (keep-alive upstreams), and against one
// instance directly. Each is measured with one process (`--router-processes 1`, nginx
// `worker_processes 1`) and with as many as given by --processes (default: one per core, the
// same number for both). The instances are plain node HTTP servers in a process of their own;
// the router is the compiled one a user runs (bin/diego.js), and router and nginx both write an
// access log line per request to a file. Client, proxies and instances share this machine's
// cores, so read the figures as ratios.
//
//   tsx bench/router.ts [--duration 8] [--connections 50] [--processes N]

import { spawn, type ChildProcess } from "node:child_process";
import { openSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { decodeDesiredLRPCreateRequest } from "../src/model/lrp-json.js";
import { connectNats, openLrpBuckets, startEmbeddedNats } from "../src/nats/index.js";
import { createLrpStore } from "../src/store/lrp-store.js";
import { freePort } from "../test/fixtures/ports.js";
import buildDist from "../test/support/build-dist.js";

const REPO = path.resolve(import.meta.dirname, "..");
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const DURATION = arg("duration", 8);
const CONNECTIONS = arg("connections", 50);
const PROCESSES = arg("processes", os.cpus().length);
const PROCESS_COUNTS = PROCESSES > 1 ? [1, PROCESSES] : [1];

const children: ChildProcess[] = [];

/** Spawns a process and resolves with the first stdout line that `ready` accepts. */
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
    child.once("exit", (code) => reject(new Error(`${cmd} ${args.join(" ")} exited (${code})`)));
  });
}

async function stopChildren(list: ChildProcess[]): Promise<void> {
  for (const c of list) if (c.exitCode === null) c.kill("SIGTERM");
  await Promise.all(list.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}

function nginxConf(dir: string, workers: number, one: number, three: number, backends: number[]): string {
  const upstream = (name: string, ports: number[]) => `upstream ${name} { ${ports.map((p) => `server 127.0.0.1:${p};`).join(" ")} keepalive 64; }`;
  const server = (port: number, up: string) => `server { listen 127.0.0.1:${port}; location / { proxy_pass http://${up}; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Request-Start $msec; } }`;
  return `worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/nginx-access-${workers}.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_timeout 75s; keepalive_requests 100000;
  ${upstream("one", backends.slice(0, 1))}
  ${upstream("three", backends)}
  ${server(one, "one")}
  ${server(three, "three")}
}
`;
}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function measure(name: string, port: number, host: string): Promise<Row> {
  const opts = { url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, headers: { host } };
  await autocannon({ ...opts, duration: 2 }); // warm-up: JIT, connection pools
  const r = await autocannon({ ...opts, duration: DURATION });
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx + r.timeouts };
}

async function main(): Promise<void> {
  buildDist();
  const dir = await mkdtemp(path.join(os.tmpdir(), "diego-bench-router-"));
  const nats = await startEmbeddedNats({ dataDir: path.join(dir, "nats"), port: 0 });
  try {
    const backends = JSON.parse(await start(process.execPath, ["--import", "tsx", "bench/router-backend.ts", "3"], (l) => l.startsWith("["))) as number[];

    const nc = await connectNats({ url: nats.url, name: "bench-router" });
    const store = createLrpStore(nc, await openLrpBuckets(nc));
    const lrp = async (guid: string, host: string, ports: number[]): Promise<void> => {
      await store.desire(decodeDesiredLRPCreateRequest({
        process_guid: guid, domain: "bench", rootfs: "preloaded:cflinuxfs2", instances: ports.length, ports: [8080],
        routes: { "cf-router": [{ hostnames: [host], port: 8080 }] }, action: { run: { path: "/bin/httpd" } },
      }));
      for (const [i, p] of ports.entries()) {
        const key = { cellId: "bench-cell", instanceGuid: `${guid}-${i}` };
        await store.claim(guid, i, key);
        await store.start(guid, i, key, { address: "127.0.0.1", ports: [{ containerPort: 8080, hostPort: p }] });
      }
    };
    await lrp("bench-one", "one.bench", backends.slice(0, 1));
    await lrp("bench-three", "three.bench", backends);

    const rows: Row[] = [];
    rows.push(await measure("direct to one instance", backends[0]!, "one.bench"));
    for (const n of PROCESS_COUNTS) {
      const started = children.length;
      const routerPort = await freePort();
      await start(
        process.execPath,
        ["bin/diego.js", "router", "--nats", nats.url, "--router-listen", `127.0.0.1:${routerPort}`, "--router-processes", String(n), "--log-format", "json"],
        (l) => l.includes("ready"),
        path.join(dir, `router-access-${n}.log`),
      );
      const [nginxOne, nginxThree] = [await freePort(), await freePort()];
      const conf = path.join(dir, `nginx-${n}.conf`);
      writeFileSync(conf, nginxConf(dir, n, nginxOne, nginxThree, backends));
      children.push(spawn("nginx", ["-c", conf, "-p", dir, "-g", "daemon off;"], { stdio: "inherit" }));
      await waitForPort(nginxThree);
      const procs = n === 1 ? "1 process" : `${n} processes`;
      rows.push(await measure(`nginx, one instance, ${procs}`, nginxOne, "one.bench"));
      rows.push(await measure(`router, one instance, ${procs}`, routerPort, "one.bench"));
      rows.push(await measure(`nginx, three instances, ${procs}`, nginxThree, "three.bench"));
      rows.push(await measure(`router, three instances, ${procs}`, routerPort, "three.bench"));
      await stopChildren(children.splice(started));
    }

    console.log(`\n${CONNECTIONS} connections, ${DURATION} s each, ${os.cpus().length} cores shared by client, proxy and instances; n processes: router --router-processes n, nginx worker_processes n\n`);
    console.log("| target | requests/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|");
    for (const r of rows) console.log(`| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.errors} |`);
    for (const n of PROCESS_COUNTS) {
      const procs = n === 1 ? "1 process" : `${n} processes`;
      for (const t of ["one instance", "three instances"]) {
        const ng = rows.find((r) => r.name === `nginx, ${t}, ${procs}`)!;
        const ro = rows.find((r) => r.name === `router, ${t}, ${procs}`)!;
        console.log(`router / nginx, ${t}, ${procs}: ${((100 * ro.rps) / ng.rps).toFixed(0)}% of the requests/s, p99 ${(ro.p99 / ng.p99).toFixed(2)}x`);
      }
    }
    store.close();
    await nc.close();
  } finally {
    await stopChildren(children);
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
