import { execFileSync } from "node:child_process";
import { readdirSync, statSync, utimesSync } from "node:fs";
import path from "node:path";

// Tests spawn bin/diego.js, which runs dist/: build it first when a source is newer than the last
// build, so that no test runs stale compiled code. A no-op when dist is up to date.

const ROOT = path.resolve(import.meta.dirname, "../..");
const BUILD_INFO = path.join(ROOT, "dist/.tsbuildinfo");
const SOURCES = ["src", "cell-agent/src", "tsconfig.json", "tsconfig.build.json"];

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, entry)));
  return newest;
}

function builtAt(): number {
  try {
    return statSync(BUILD_INFO).mtimeMs;
  } catch {
    return 0;
  }
}

export default function setup(): void {
  const newest = Math.max(...SOURCES.map((s) => newestMtime(path.join(ROOT, s))));
  if (newest <= builtAt()) return;
  execFileSync(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
  // tsc leaves the file alone when nothing changed (say after a checkout touched the sources).
  const now = new Date();
  utimesSync(BUILD_INFO, now, now);
}
