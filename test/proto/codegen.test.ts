import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../fixtures/receptor.js";

// The schemas stay lint-clean and the committed bindings are exactly what `npm run generate`
// makes from them (so nobody edits src/gen by hand, and nobody forgets to regenerate).

const run = promisify(execFile);
const BUF = path.join(REPO_ROOT, "node_modules/.bin/buf");
const env = { ...process.env, PATH: `${path.join(REPO_ROOT, "node_modules/.bin")}:${process.env.PATH}` };
let out: string | undefined;

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

async function files(dir: string, prefix = ""): Promise<string[]> {
  const entries = await readdir(path.join(dir, prefix), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? files(dir, path.join(prefix, e.name)) : Promise.resolve([path.join(prefix, e.name)]))),
  );
  return nested.flat().sort();
}

describe("protobuf schemas", () => {
  it("pass buf lint", async () => {
    const { stdout, stderr } = await run(BUF, ["lint"], { cwd: REPO_ROOT, env });
    expect(stdout + stderr).toBe("");
  });

  it("generate exactly the committed bindings", async () => {
    out = await mkdtemp(path.join(os.tmpdir(), "diego-gen-"));
    await run(BUF, ["generate", "-o", out], { cwd: REPO_ROOT, env });
    const committed = path.join(REPO_ROOT, "src/gen");
    const fresh = path.join(out, "src/gen");
    const names = await files(committed);
    expect(await files(fresh)).toEqual(names);
    for (const name of names) {
      expect(await readFile(path.join(fresh, name), "utf8"), name).toBe(await readFile(path.join(committed, name), "utf8"));
    }
  });
});
