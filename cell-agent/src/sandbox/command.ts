import { spawn } from "node:child_process";
import { CommandError } from "./errors.js";

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a short helper command to completion, collecting its output. Never throws on exit codes. */
export function runCommand(file: string, args: string[], opts: { cwd?: string } = {}): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** Like runCommand, but a non-zero exit becomes a CommandError. */
export async function runChecked(file: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const res = await runCommand(file, args, opts);
  if (res.code !== 0) throw new CommandError([file, ...args].join(" "), res.code, res.stderr);
  return res.stdout;
}
