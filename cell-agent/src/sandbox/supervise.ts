import type { ChildProcess } from "node:child_process";
import { watch as watchPath, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { constants } from "node:os";
import { pipeline } from "node:stream";
import { readRuntimeErrors } from "./oci-cli.js";
import type { ProcessIO } from "./types.js";

/** Exit code reported when the process could not be started at all (missing binary, bad cwd ...). */
export const START_FAILURE_EXIT_CODE = 127;
// runc exits 255 when `exec` cannot start the process and 1 when `run` cannot; crun uses 255/1 too.
const RUNTIME_FAILURE_CODES = new Set([1, 255]);
const PID_POLL_MS = 5;
/** How often a pid-file watch checks whether the process already ended without one. */
const DONE_POLL_MS = 250;

export interface SuperviseOptions {
  child: ChildProcess;
  io: ProcessIO;
  signal?: AbortSignal;
  pidFile: string;
  logFile: string;
  /** Kills the process whose host pid the runtime wrote to pidFile. */
  kill(pid: number): Promise<void>;
}

/**
 * Streams a `runc run`/`runc exec` child's output to io, kills the container process when the
 * signal aborts, and resolves with the process's exit code (128+n for a signal, 127 when the
 * runtime could not start it; the runtime's own message then arrives on stderr).
 */
export async function superviseRuntimeProcess(opts: SuperviseOptions): Promise<number> {
  const { child, io, signal } = opts;
  let finished = false;
  child.stdout?.on("data", (chunk: Buffer) => io.stdout(chunk));
  child.stderr?.on("data", (chunk: Buffer) => io.stderr(chunk));
  feedStdin(child, io);
  // The runtime writes the pid file once the process exists: its start is done.
  if (io.onStart) {
    const onStart = io.onStart.bind(io);
    void pidFileWritten(opts.pidFile, () => finished).then((written) => (written && !finished ? onStart() : undefined));
  }
  const closed = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, sig) => {
      finished = true;
      resolve({ code, sig });
    });
  });
  const onAbort = (): void => {
    void waitForPid(opts.pidFile, () => finished).then((pid) => (pid && !finished ? opts.kill(pid) : undefined));
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const { code, sig } = await closed;
    if (code === null) return 128 + (sig ? (constants.signals[sig] ?? 9) : 9);
    if (RUNTIME_FAILURE_CODES.has(code) && (await readRuntimeErrors(opts.logFile)).length > 0) {
      return START_FAILURE_EXIT_CODE;
    }
    return code;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Pipes io.stdin into the runtime process. A process that exits without reading it all (EPIPE)
 * or a source that fails ends the pipe; the exit code tells the caller what happened.
 */
function feedStdin(child: ChildProcess, io: ProcessIO): void {
  const source = io.stdin;
  if (!source) return;
  if (!child.stdin) {
    source.destroy();
    return;
  }
  pipeline(source, child.stdin, () => undefined);
  child.once("close", () => source.destroy());
}

/**
 * Resolves true once the runtime has written the pid file, false when done() turns true first.
 * Watches the directory (inotify) rather than polling: a cell starting many containers at
 * once would otherwise spend its event loop reading files that are not there yet.
 */
function pidFileWritten(pidFile: string, done: () => boolean): Promise<boolean> {
  const name = path.basename(pidFile);
  return new Promise<boolean>((resolve) => {
    let settled = false;
    let watcher: FSWatcher | undefined;
    let ended: NodeJS.Timeout | undefined;
    const finish = (written: boolean): void => {
      if (settled) return;
      settled = true;
      watcher?.close();
      clearInterval(ended);
      resolve(written);
    };
    const check = (): void =>
      void readFile(pidFile, "utf8").then(
        (text) => Number(text.trim()) > 0 && finish(true),
        () => undefined,
      );
    try {
      // Started before the first look, so a write in between is not missed.
      watcher = watchPath(path.dirname(pidFile), (_event, file) => file === name && check());
      watcher.on("error", () => finish(false));
    } catch {
      return finish(false);
    }
    ended = setInterval(() => done() && finish(false), DONE_POLL_MS);
    check();
  });
}

/** Polls for the pid file the runtime writes once the process exists; undefined if it never came. */
export async function waitForPid(pidFile: string, done: () => boolean): Promise<number | undefined> {
  for (;;) {
    try {
      const pid = Number((await readFile(pidFile, "utf8")).trim());
      if (pid > 0) return pid;
    } catch {
      // not written yet
    }
    if (done()) return undefined;
    await new Promise((r) => setTimeout(r, PID_POLL_MS));
  }
}
