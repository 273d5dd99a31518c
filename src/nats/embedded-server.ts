import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type { Logger } from "pino";
import { diegoCommandOf } from "../process/index.js";

// Runs the system's nats-server binary as a child process with JetStream on a file store.
// `diego up` and the tests use it; a fleet points every process at an existing cluster instead.

export interface EmbeddedNatsOptions {
  dataDir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * If `port` is taken (by another nats-server, say a system service), pick a free one instead
   * of failing. Checked after a server left running on this data dir has been stopped.
   */
  freePortIfTaken?: boolean;
  binary?: string;
  logger?: Logger;
  /** Clients must log in as this user; without it anyone who reaches the port may connect. */
  auth?: { user: string; password: string };
  /** More nats-server configuration (say a `tls` or `authorization` block), in its config syntax. */
  config?: string;
}

export interface EmbeddedNats {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
  /** SIGKILL, for crash tests. */
  kill(): Promise<void>;
}

export class NatsServerStartError extends Error {
  override readonly name = "NatsServerStartError";
}

/** A `diego up` that is still running owns the nats-server on this data dir. */
export class DataDirInUseError extends Error {
  override readonly name = "DataDirInUseError";
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
  ) {
    super(`the NATS store in ${dataDir} is in use by a running diego up (pid ${ownerPid}); stop it first, or give another --data-dir`);
  }
}

export async function startEmbeddedNats(opts: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  const host = opts.host ?? "127.0.0.1";
  const storeDir = path.join(opts.dataDir, "jetstream");
  await mkdir(storeDir, { recursive: true });
  const pidFile = path.join(opts.dataDir, "nats-server.pid");
  await stopOrphan(pidFile, storeDir, opts.dataDir, opts.logger);
  let wanted = opts.port ?? 0;
  if (opts.freePortIfTaken && wanted !== 0 && !(await portIsFree(wanted, host))) {
    opts.logger?.warn({ port: wanted }, "the NATS port is taken (a system nats-server?); using a free port");
    wanted = 0;
  }
  const args = ["-js", "-sd", storeDir, "-a", host, "-p", String(wanted || -1), "-n", "diego", "-P", pidFile];
  if (opts.auth || opts.config) args.unshift("-c", await writeConfig(opts.dataDir, opts));
  const child = spawnWithParent(opts.binary ?? "nats-server", args);
  const port = await waitForListening(child, opts.logger);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return {
    url: `nats://${host}:${port}`,
    port,
    pid: child.pid ?? -1,
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
  };
}

/**
 * The password goes in a config file only this user reads, never on the command line (which every
 * local user sees in /proc).
 */
async function writeConfig(dataDir: string, opts: EmbeddedNatsOptions): Promise<string> {
  const file = path.join(dataDir, "nats-server.conf");
  let conf = opts.config ? `${opts.config}\n` : "";
  if (opts.auth) conf += `authorization {\n  user: ${JSON.stringify(opts.auth.user)}\n  password: ${JSON.stringify(opts.auth.password)}\n}\n`;
  // Made afresh, so that the mode of an older file never applies to the password.
  await rm(file, { force: true });
  await writeFile(file, conf, { mode: 0o600, flag: "wx" });
  return file;
}

/** util-linux's setpriv, on every Debian system: it sets the parent-death signal, then execs. */
const SETPRIV = "/usr/bin/setpriv";

/**
 * Starts nats-server so that it is sent SIGTERM (a clean shutdown) when this process dies, even by
 * SIGKILL, rather than living on as an orphan that holds the port and the store's lock. Without
 * setpriv the next start still stops an orphan (stopOrphan).
 */
function spawnWithParent(binary: string, args: string[]): ChildProcess {
  const stdio: ["ignore", "ignore", "pipe"] = ["ignore", "ignore", "pipe"];
  if (!existsSync(SETPRIV)) return spawn(binary, args, { stdio });
  return spawn(SETPRIV, ["--pdeathsig", "TERM", "--", binary, ...args], { stdio });
}

/** The pid of the `diego up` whose child `pid` is, if that parent still runs. */
async function runningDiegoUp(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  // Fields after "(comm)": state, then the parent's pid.
  const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  if (!Number.isInteger(ppid) || ppid <= 1) return undefined;
  return (await diegoCommandOf(ppid)) === "up" ? ppid : undefined;
}

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

const NOT_FOUND = "the nats-server binary was not found (apt-get install nats-server)";

function waitForListening(child: ChildProcess, logger?: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    let port = 0;
    let buffered = "";
    const fail = (message: string): void => {
      child.kill("SIGKILL");
      reject(new NatsServerStartError(`nats-server did not start: ${message}`));
    };
    child.once("error", (err) => fail((err as NodeJS.ErrnoException).code === "ENOENT" ? NOT_FOUND : err.message));
    child.once("exit", (code) =>
      // 127: setpriv could not find the binary to exec.
      fail(code === 127 ? NOT_FOUND : `exited with code ${code}: ${buffered.slice(-500)}`),
    );
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      buffered += chunk;
      for (const line of chunk.split("\n")) {
        if (line.trim()) logger?.debug({ nats: line.trim() }, "nats-server");
      }
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(buffered);
      if (m) port = Number(m[1]);
      if (port && buffered.includes("Server is ready")) {
        child.removeAllListeners("exit");
        buffered = "";
        resolve(port);
      }
    });
  });
}

/**
 * A `diego up` killed with SIGKILL leaves its nats-server running on the data dir; the next start
 * stops it first (it holds the store's lock and the port). Only a process whose command line
 * names this store dir is touched.
 */
async function stopOrphan(pidFile: string, storeDir: string, dataDir: string, logger?: Logger): Promise<void> {
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 1) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes("nats-server") || !cmdline.split("\0").includes(storeDir)) return;
  // Not an orphan: a second `diego up` on the same data dir must not take the first one's server.
  const owner = await runningDiegoUp(pid);
  if (owner !== undefined) throw new DataDirInUseError(dataDir, owner);
  logger?.warn({ pid }, "stopping a nats-server left running by an earlier run");
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100; i++) {
    if (!(await readFile(`/proc/${pid}/cmdline`, "utf8").then(Boolean, () => false))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(pid, "SIGKILL");
}
