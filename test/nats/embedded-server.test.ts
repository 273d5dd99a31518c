import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startEmbeddedNats, type EmbeddedNats } from "../../src/nats/index.js";
import { freePort } from "../fixtures/ports.js";

// `diego up` runs nats-server as a child. Killed with SIGKILL, it leaves that child running on
// its data dir; the next start must stop it and still get the port it asked for.

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
