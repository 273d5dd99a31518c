import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startEmbeddedNats, type EmbeddedNats } from "../../src/nats/index.js";
import { freePort } from "../fixtures/ports.js";
import { REPO_ROOT } from "../fixtures/receptor.js";

// `diego up` runs nats-server as a child, which must not outlive it, even when it is killed with
// SIGKILL. An orphan that does (from a machine without setpriv) is stopped by the next start,
// which still gets the port it asked for.

const isRunning = (pid: number): Promise<boolean> => readFile(`/proc/${pid}/cmdline`, "utf8").then(Boolean, () => false);

describe("the embedded nats-server", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const dataDir = async (): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "diego-embedded-nats-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };
  const start = async (opts: Parameters<typeof startEmbeddedNats>[0]): Promise<EmbeddedNats> => {
    const nats = await startEmbeddedNats(opts);
    cleanup.push(() => nats.kill());
    return nats;
  };

  it("stops a server an earlier run left on the same data dir before choosing the port, and keeps that port", async () => {
    const dir = await dataDir();
    const port = await freePort();
    // The earlier run: its parent died without stopping it.
    const orphan = await start({ dataDir: dir, port, freePortIfTaken: true });
    const next = await start({ dataDir: dir, port, freePortIfTaken: true });
    expect(await isRunning(orphan.pid)).toBe(false);
    expect(next.port).toBe(port);
    expect(next.url).toBe(`nats://127.0.0.1:${port}`);
  });

  it("stops with the process that started it, even one killed with SIGKILL", async () => {
    const dir = await dataDir();
    // A parent process of its own, so that it can be killed.
    const script = path.join(dir, "parent.mts"); // .mts: ESM (top-level await) outside the package
    await writeFile(
      script,
      `import { startEmbeddedNats } from ${JSON.stringify(path.join(REPO_ROOT, "src/nats/index.ts"))};\n` +
        `const nats = await startEmbeddedNats({ dataDir: ${JSON.stringify(dir)}, port: 0 });\n` +
        `console.log("nats-server " + nats.pid);\nsetInterval(() => {}, 1000);\n`,
    );
    const parent = spawn(process.execPath, ["--import", "tsx", script], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
    cleanup.push(async () => parent.kill("SIGKILL"));
    const pid = await new Promise<number>((resolve, reject) => {
      let out = "";
      parent.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /nats-server (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      parent.once("exit", (code) => reject(new Error(`parent exited (${code}) before nats-server started`)));
    });
    cleanup.push(async () => (await isRunning(pid)) && process.kill(pid, "SIGKILL"));
    expect(await isRunning(pid)).toBe(true);
    parent.kill("SIGKILL");
    await vi.waitFor(async () => expect(await isRunning(pid)).toBe(false), { timeout: 10_000, interval: 50 });
  });

  it("takes a free port when something else holds the one asked for, if allowed to", async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => holder.close(r)));
    const taken = (holder.address() as net.AddressInfo).port;
    const nats = await start({ dataDir: await dataDir(), port: taken, freePortIfTaken: true });
    expect(nats.port).not.toBe(taken);
    expect(nats.port).toBeGreaterThan(0);
    await expect(startEmbeddedNats({ dataDir: await dataDir(), port: taken })).rejects.toThrow(/nats-server did not start/);
  });
});
