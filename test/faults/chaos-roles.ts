import { appendFileSync } from "node:fs";
import path from "node:path";
import { spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { sleep } from "./fault-support.js";

// The processes of a chaos run, each a named role that can be SIGKILLed and started again with
// the same arguments (same --listen port, same --data-dir and --cell-id).

export interface Role {
  readonly name: string;
  readonly args: string[];
  proc?: DiegoProcess;
  state: "down" | "starting" | "up";
  kills: number;
  /** When each SIGKILL happened (ms since the epoch). */
  killedAt: number[];
  /** Start-to-ready durations of every start, in ms. */
  startMs: number[];
}

export interface RoleSet {
  readonly roles: Role[];
  start(role: Role): Promise<void>;
  kill(role: Role, signal?: NodeJS.Signals): Promise<void>;
  /** Roles down or on their way up. */
  notUp(): number;
  /** Waits until every role is up, starting those that are down. */
  allUp(): Promise<void>;
  /** SIGKILLs every process (afterAll). */
  killAll(): Promise<void>;
}

export interface RoleSetOptions {
  /** Appends each process's stderr here (<dir>/<role>.log) when it ends; for debugging a run. */
  logDir?: string;
  env?: NodeJS.ProcessEnv;
}

export function createRoleSet(defs: Array<{ name: string; args: string[] }>, opts: RoleSetOptions = {}): RoleSet {
  const roles: Role[] = defs.map((d) => ({ ...d, state: "down", kills: 0, killedAt: [], startMs: [] }));
  const starting = new Map<Role, Promise<void>>();

  const keepLog = (role: Role, note: string): void => {
    if (opts.logDir && role.proc) appendFileSync(path.join(opts.logDir, `${role.name}.log`), `${role.proc.stderr()}\n=== ${note} ${Date.now()}\n`);
  };

  const start = (role: Role): Promise<void> => {
    const already = starting.get(role);
    if (already) return already;
    role.state = "starting";
    const p = (async () => {
      const began = Date.now();
      // A start can fail while the machine is overloaded: try again rather than leave the role down.
      for (let attempt = 1; ; attempt++) {
        try {
          role.proc = await spawnDiego(role.args, opts.env);
          break;
        } catch (err) {
          if (attempt >= 3) throw err;
          await sleep(200);
        }
      }
      role.startMs.push(Date.now() - began);
      role.state = "up";
    })().finally(() => starting.delete(role));
    starting.set(role, p);
    return p;
  };

  return {
    roles,
    start,
    async kill(role, signal = "SIGKILL") {
      if (role.state !== "up" || !role.proc) return;
      role.state = "down";
      if (signal === "SIGKILL") {
        role.kills += 1;
        role.killedAt.push(Date.now());
      }
      await role.proc.kill(signal);
      keepLog(role, `${signal}`);
    },
    notUp: () => roles.filter((r) => r.state !== "up").length,
    async allUp() {
      await Promise.all(roles.map((r) => (r.state === "down" ? start(r) : starting.get(r))));
    },
    async killAll() {
      await Promise.allSettled([...starting.values()]);
      await Promise.all(roles.map((r) => r.proc?.kill("SIGKILL")));
      for (const r of roles) {
        if (r.state === "up") keepLog(r, "END");
        r.state = "down";
      }
    },
  };
}

export interface ChaosLoopOptions {
  random: () => number;
  /** Kills happen in this window; longer (up to twice) until every role died once. */
  windowMs: number;
  /** At most this many roles down or starting at once. */
  maxDown: number;
  maxKills: number;
  /** Roles never killed. */
  spared: string[];
}

export interface ChaosLoop {
  /** Resolves when the window is over and every killed role is up again. */
  finished: Promise<void>;
  /** Ends the loop early and waits for restarts in flight (afterAll, on failure). */
  stop(): Promise<void>;
}

/**
 * Every 1-2 s one live role dies (SIGKILL) and starts again 0-0.5 s later. Victims come in
 * rounds, each a seeded shuffle of every role, so each kind dies early on.
 */
export function startChaosLoop(set: RoleSet, opts: ChaosLoopOptions): ChaosLoop {
  const { random } = opts;
  const began = Date.now();
  const victims = set.roles.filter((r) => !opts.spared.includes(r.name));
  const restarts: Array<Promise<void>> = [];
  let stopped = false;

  const windowOver = (): boolean => {
    const elapsed = Date.now() - began;
    // On a slow machine restarts take long: go on until every kind died at least once.
    return elapsed >= 2 * opts.windowMs || (elapsed >= opts.windowMs && victims.every((r) => r.kills > 0));
  };

  const loop = async (): Promise<void> => {
    let kills = 0;
    let round: Role[] = [];
    while (!stopped && kills < opts.maxKills) {
      await sleep(1000 + random() * 1000);
      if (stopped || windowOver()) return;
      if (round.length === 0) round = shuffled(victims, random);
      const at = round.findIndex((r) => r.state === "up");
      const delay = random() * 500;
      if (at < 0 || set.notUp() >= opts.maxDown) continue;
      const [victim] = round.splice(at, 1);
      await set.kill(victim!);
      kills += 1;
      restarts.push(sleep(delay).then(() => (stopped ? undefined : set.start(victim!))));
    }
  };

  const running = loop();
  return {
    finished: running.then(async () => {
      await Promise.all(restarts);
      await set.allUp();
    }),
    async stop() {
      stopped = true;
      await running;
      await Promise.allSettled(restarts);
    },
  };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
