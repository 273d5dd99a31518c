import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { DIEGO_BIN, REPO_ROOT } from "../fixtures/receptor.js";

// bin/diego.js runs the compiled dist/ (npm run build), not the sources through tsx, which is a
// development dependency only.

const run = promisify(execFile);
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A copy of bin/diego.js in a fresh tree, with `dist` holding what is given. */
async function binCopy(mainJs?: string): Promise<{ root: string; bin: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), "diego-bin-"));
  dirs.push(root);
  await mkdir(path.join(root, "bin"));
  await copyFile(DIEGO_BIN, path.join(root, "bin/diego.js"));
  await writeFile(path.join(root, "package.json"), JSON.stringify({ type: "module" }));
  if (mainJs !== undefined) {
    await mkdir(path.join(root, "dist/src/cli"), { recursive: true });
    await writeFile(path.join(root, "dist/src/cli/main.js"), mainJs);
  }
  return { root, bin: path.join(root, "bin/diego.js") };
}

describe("the compiled build", () => {
  it("bin/diego.js runs dist/src/cli/main.js with the command line", async () => {
    const { bin } = await binCopy(`console.log("compiled main: " + process.argv.slice(2).join(" "));\n`);
    expect((await run(process.execPath, [bin, "receptor", "--help"])).stdout).toBe("compiled main: receptor --help\n");
  });

  it("says how to build when dist is missing", async () => {
    const { root, bin } = await binCopy();
    const failed = await run(process.execPath, [bin, "up"]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(
      `diego: ${path.join(root, "dist/src/cli/main.js")} is missing; build it with \`npm run build\` (or run the sources: npx tsx src/cli/main.ts)\n`,
    );
  });

  it("needs no tsx at run time, and the real build answers", async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, "package.json"), "utf8")) as Record<string, Record<string, string>>;
    expect(Object.keys(pkg.dependencies!)).not.toContain("tsx");
    expect(pkg.devDependencies!.tsx).toBeDefined();
    const { stdout } = await run(process.execPath, [DIEGO_BIN, "help"]);
    expect(stdout).toMatch(/^usage: diego <command> \[flags\]/);
  });
});
