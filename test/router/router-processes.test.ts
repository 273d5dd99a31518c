import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeDesiredLRPCreateRequest } from "../../src/model/lrp-json.js";
import { connectNats, openLrpBuckets } from "../../src/nats/index.js";
import { createLrpStore } from "../../src/store/lrp-store.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// `diego router --router-processes 2` as a user runs it (the compiled bin/diego.js): one
// address, client connections handed to two router processes in turn, a killed one started
// again, all of them gone on SIGTERM.

const BIN = path.resolve(import.meta.dirname, "../../bin/diego.js");

let nats: TestNats;
let child: ChildProcess;
let port: number;
const lines: Array<Record<string, unknown>> = [];

/** Starts `diego router --router-processes 2` with `flags`; resolves with its port. */
async function startProcesses(flags: string[]): Promise<number> {
  child = spawn(process.execPath, [BIN, "router", "--nats", nats.url, "--router-listen", "127.0.0.1:0", "--router-processes", "2", "--log-format", "json", ...flags], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (c: Buffer) => {
    err += c.toString();
    const parts = err.split("\n");
    err = parts.pop()!;
    for (const l of parts.filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const ready = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.once("exit", (code) => reject(new Error(`diego router exited (${code})`)));
  });
  const m = /^diego router ready on 127\.0\.0\.1:(\d+) \(nats .*, 2 processes\)$/.exec(ready);
  expect(m, ready).not.toBeNull();
  return Number(m![1]);
}

beforeAll(async () => {
  nats = await startNats();
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
  await nats?.dispose();
});

/** A request on a connection of its own; resolves with the pid of the router that logged it. */
async function servedBy(tag: string): Promise<number> {
  const status = await new Promise<number>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: `/${tag}`, headers: { host: "nothing.local" }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
  expect(status).toBe(404);
  return until(`access line of ${tag}`, () => lines.find((l) => l.msg === "access" && l.path === `/${tag}`)?.pid as number | undefined);
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  // Generous: a restarted router process loads the compiled build again, slow on a busy machine.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("diego router --router-processes 2", () => {
  it("hands connections to both processes in turn, starts a killed one again, and stops them all on SIGTERM", { timeout: 120_000 }, async () => {
    port = await startProcesses(["--router-register", "off"]);
    const first = new Set<number>();
    for (let i = 0; i < 4; i++) first.add(await servedBy(`a${i}`));
    expect(first.size).toBe(2);
    expect(first.has(child.pid!)).toBe(false);

    const [killed] = [...first];
    process.kill(killed!, "SIGKILL");
    await until("the restart", () => lines.find((l) => l.msg === "router process died; starting it again"));
    const after = new Set<number>();
    await until("two live router processes again", async () => {
      after.add(await servedBy(`b${after.size}-${Date.now()}`));
      return after.size >= 2 && [...after].some((p) => !first.has(p)) ? true : undefined;
    });
    expect(after.has(killed!)).toBe(false);

    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    for (const pid of [...first, ...after]) expect(alive(pid)).toBe(false);
  });

  it("ends its router processes when the supervisor is SIGKILLed", { timeout: 120_000 }, async () => {
    port = await startProcesses(["--router-register", "off"]);
    const pids = new Set<number>();
    for (let i = 0; i < 4; i++) pids.add(await servedBy(`k${i}`));
    expect(pids.size).toBe(2);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    await until("the router processes to end", () => ([...pids].some(alive) ? undefined : true));
  });

  it("publishes route registrations from one of the processes only", async () => {
    const nc = await connectNats({ url: nats.url, name: "router-processes-test" });
    const store = createLrpStore(nc, await openLrpBuckets(nc));
    try {
      await store.desire(decodeDesiredLRPCreateRequest({
        process_guid: "reg", domain: "router-test", rootfs: "preloaded:cflinuxfs2", instances: 1, ports: [8080],
        routes: { "cf-router": [{ hostnames: ["reg.local"], port: 8080 }] }, action: { run: { path: "/bin/httpd" } },
      }));
      const key = { cellId: "cell-reg", instanceGuid: "ig-reg-0" };
      await store.claim("reg", 0, key);
      await store.start("reg", 0, key, { address: "127.0.0.1", ports: [{ containerPort: 8080, hostPort: 61001 }] });
      const registered: string[] = [];
      const sub = nc.subscribe("router.register", { callback: (_err, msg) => void registered.push(msg.string()) });
      await nc.flush();
      port = await startProcesses([]);
      // Each registering router sends everything as it starts, before it reports ready; a window
      // after the ready line is the time a second copy would have to arrive in.
      await nc.flush();
      await new Promise((r) => setTimeout(r, 500));
      sub.unsubscribe();
      expect(registered.map((m) => JSON.parse(m) as { uris: string[]; port: number })).toEqual([expect.objectContaining({ uris: ["reg.local"], port: 61001 })]);
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    } finally {
      store.close();
      await nc.close();
    }
  });
});
