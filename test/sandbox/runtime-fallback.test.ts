import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { usableRuntime } from "../../cell-agent/src/agent/index.js";
import { RuntimeUnavailableError } from "../../cell-agent/src/sandbox/index.js";

// crun is the cell's default runtime; left at the default, a cell without a usable crun runs
// its containers with runc and logs why. Asked for by name, a missing crun fails the start.

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function capture(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: "info" }, sink), lines: () => out.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("the cell's runtime", () => {
  it("falls back to runc with a log line naming the reason when crun is missing and not asked for", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "runtime-fallback-"));
    dirs.push(dir);
    const { logger, lines } = capture();
    const rt = await usableRuntime({ runtime: "crun", fallback: true, workDir: path.join(dir, "containers"), logger, crunBinary: "/nonexistent/crun" });
    expect(rt.name).toBe("runc");
    const warning = lines().find((l) => l.level === 40);
    expect(warning?.msg).toBe("crun is not usable here; the cell runs containers with runc instead (--runtime chooses)");
    expect(String(warning?.reason)).toContain("/nonexistent/crun is not usable");
  });

  it("fails, naming crun, when crun was asked for by name", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "runtime-fallback-"));
    dirs.push(dir);
    const { logger } = capture();
    const start = usableRuntime({ runtime: "crun", fallback: false, workDir: path.join(dir, "containers"), logger, crunBinary: "/nonexistent/crun" });
    await expect(start).rejects.toThrow(RuntimeUnavailableError);
    await expect(start).rejects.toThrow("/nonexistent/crun is not usable");
  });

  it("uses crun where it works", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "runtime-fallback-"));
    dirs.push(dir);
    const { logger, lines } = capture();
    const rt = await usableRuntime({ runtime: "crun", fallback: true, workDir: path.join(dir, "containers"), logger });
    expect(rt.name).toBe("crun");
    expect(lines().filter((l) => l.level === 40)).toEqual([]);
  });
});
