import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { runCommand } from "./command.js";
import { CommandError } from "./errors.js";

/** Thin wrapper over the runc/crun command line; both accept the same verbs and flags we use. */
export interface OciCli {
  readonly name: "runc" | "crun";
  readonly binary: string;
  /** State directory (--root), private to one cell. */
  readonly root: string;
  /** Foreground `run`: proxies stdio, exits with the init's status and deletes the container. */
  spawnRun(opts: { id: string; bundle: string; pidFile: string; logFile: string }): ChildProcess;
  /** stdin: pipe the process's stdin (else it reads /dev/null). */
  spawnExec(opts: { id: string; processFile: string; pidFile: string; logFile: string; stdin?: boolean }): ChildProcess;
  delete(id: string, force: boolean): Promise<void>;
  list(): Promise<ContainerListing[]>;
}

export interface ContainerListing {
  id: string;
  pid: number;
  status: string;
}

// Exec'd processes get a higher oom_score_adj than the container's idle init: when a hog has
// been killed but its memory is not uncharged yet, a second OOM pass picks the biggest process
// left, and that must not be the init (the container would die). Lowering the init instead
// needs CAP_SYS_RESOURCE, which a cell may not have. choom (util-linux) sets it before exec.
const EXEC_OOM_SCORE_ADJ = "500";
const CHOOM = "/usr/bin/choom";

export function createOciCli(name: "runc" | "crun", binary: string, root: string, useChoom = true): OciCli {
  const global = (logFile?: string): string[] =>
    logFile ? [`--root=${root}`, `--log=${logFile}`, "--log-format=json"] : [`--root=${root}`];
  const stdio: ["ignore", "pipe", "pipe"] = ["ignore", "pipe", "pipe"];
  return {
    name,
    binary,
    root,
    spawnRun: ({ id, bundle, pidFile, logFile }) =>
      spawn(binary, [...global(logFile), "run", `--bundle=${bundle}`, `--pid-file=${pidFile}`, id], { stdio }),
    spawnExec: ({ id, processFile, pidFile, logFile, stdin }) => {
      const args = [...global(logFile), "exec", `--process=${processFile}`, `--pid-file=${pidFile}`, id];
      const io: ["ignore" | "pipe", "pipe", "pipe"] = stdin ? ["pipe", "pipe", "pipe"] : stdio;
      return useChoom ? spawn(CHOOM, ["-n", EXEC_OOM_SCORE_ADJ, "--", binary, ...args], { stdio: io }) : spawn(binary, args, { stdio: io });
    },
    async delete(id, force) {
      const res = await runCommand(binary, [...global(), "delete", ...(force ? ["--force"] : []), id]);
      if (res.code !== 0 && !/does not exist|not found|no such file/i.test(res.stderr)) {
        throw new CommandError(`${name} delete ${id}`, res.code, res.stderr);
      }
    },
    async list() {
      const res = await runCommand(binary, [...global(), "list", "--format=json"]);
      if (res.code !== 0) throw new CommandError(`${name} list`, res.code, res.stderr);
      const parsed: unknown = JSON.parse(res.stdout.trim() || "[]");
      if (!Array.isArray(parsed)) return [];
      return parsed.map((c: { id?: string; pid?: number; status?: string }) => ({
        id: String(c.id ?? ""),
        pid: Number(c.pid ?? 0),
        status: String(c.status ?? ""),
      }));
    },
  };
}

/** Error-level messages the runtime wrote to its JSON log (empty when it never failed). */
export async function readRuntimeErrors(logFile: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(logFile, "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === "error" || entry.level === "fatal") && entry.msg) out.push(entry.msg);
    } catch {
      out.push(line);
    }
  }
  return out;
}
