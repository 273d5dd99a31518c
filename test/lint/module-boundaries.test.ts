import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

// The module-boundary lint (npm run lint:deps, run by npm test) on small trees: another module
// only through its index.ts, and no cycle between modules.

const ROOT = path.resolve(import.meta.dirname, "../..");
const DEPCRUISE = path.join(ROOT, "node_modules/dependency-cruiser/bin/dependency-cruise.mjs");
const CONFIG = path.join(ROOT, ".dependency-cruiser.cjs");

const trees: string[] = [];
afterEach(async () => {
  await Promise.all(trees.splice(0).map((t) => rm(t, { recursive: true, force: true })));
});

/** A project of the given files (path -> source) with the repository's tsconfig settings. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "diego-lint-"));
  trees.push(dir);
  const all = { "tsconfig.json": JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true } }), ...files };
  for (const [file, text] of Object.entries(all)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  return dir;
}

async function lint(dir: string): Promise<{ code: number; stdout: string }> {
  const roots = ["src", "cell-agent/src"].filter((r) => existsSync(path.join(dir, r)));
  return promisify(execFile)(process.execPath, [DEPCRUISE, ...roots, "--config", CONFIG], { cwd: dir }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
  );
}

describe("the module-boundary lint", () => {
  it("passes imports through a module's index.ts, within a module, and of generated code", async () => {
    const dir = await tree({
      "src/model/index.ts": 'export { room } from "./room.js";\n',
      "src/model/room.ts": 'import { Kind } from "../gen/kind_pb.js";\nexport const room = Kind;\n',
      "src/gen/kind_pb.ts": "export const Kind = 1;\n",
      "src/auction/index.ts": 'export { place } from "./place.js";\n',
      "src/auction/place.ts": 'import { room } from "../model/index.js";\nexport const place = room;\n',
      "cell-agent/src/index.ts": 'export { ledger } from "./capacity/index.js";\n',
      "cell-agent/src/capacity/index.ts": 'import { room } from "../../../src/model/index.js";\nexport const ledger = room;\n',
    });
    const result = await lint(dir);
    expect(result.stdout).toContain("no dependency violations found");
    expect(result.code).toBe(0);
  });

  it("fails on a deep import into another module, naming both files", async () => {
    const dir = await tree({
      "src/store/index.ts": 'export { nowNanos } from "./clock.js";\n',
      "src/store/clock.ts": "export const nowNanos = (): bigint => 1n;\n",
      "cell-agent/src/presence/index.ts": 'import { nowNanos } from "../../../src/store/clock.js";\nexport const at = nowNanos();\n',
    });
    const result = await lint(dir);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain("no-deep-import: cell-agent/src/presence/index.ts → src/store/clock.ts");
  });

  it("fails on a cycle between modules even when no file imports itself back", async () => {
    const dir = await tree({
      "src/nats/index.ts": 'export { connect } from "./connect.js";\n',
      "src/nats/connect.ts": 'import { count } from "../metrics/index.js";\nexport const connect = count;\n',
      "src/metrics/index.ts": 'export { count } from "./count.js";\n',
      "src/metrics/count.ts": "export const count = 1;\n",
      "src/metrics/listen.ts": 'import type { connect } from "../nats/index.js";\nexport const listen = (c: typeof connect) => c;\n',
    });
    const result = await lint(dir);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toMatch(/no-module-cycle: src\/(metrics|nats) →/);
    expect(result.stdout).not.toContain("no-file-cycle");
  });
});
