import { readFile } from "node:fs/promises";

// Whether a process is one of ours, from its command line: a pid file can outlive its process,
// and the pid then belong to an unrelated program.

/** The diego command (`up`, `cell`, ...) process `pid` runs, or undefined if it runs none. */
export async function diegoCommandOf(pid: number): Promise<string | undefined> {
  const args = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  const bin = args.findIndex((a) => /(^|\/)diego(\.js)?$/.test(a));
  return bin < 0 ? undefined : (args[bin + 1] ?? "");
}
