import { appendFileSync } from "node:fs";
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
  starts: number;
}

export interface ChaosStats {
  kills: Record<string, number>;
  /** Longest a kill+restart of one role took, start to ready. */
  maxRestartMs: number;
}

export interface RoleSet {
  readonly roles: Role[];
  start(role: Role): Promise<void>;
  kill(role: Role): Promise<void>;
  /** Restarts every role that is down, and waits for those starting. */
  allUp(): Promise<void>;
  /** SIGKILLs every process (afterAll). */
  killAll(): Promise<void>;
}

export function createRoleSet(defs: Array<{ name: string; args: string[] }>): RoleSet {
  const roles: Role[] = defs.map((d) => ({ ...d, state: "down", kills: 0, starts: 0 }));
  const starting = new Map<Role, Promise<void>>();

  const start = (role: Role): Promise<void> => {
    const already = starting.get(role);
    if (already) return already;
    role.state = "starting";
    const p = (async () => {
      // A start can fail while NATS is busy: try again rather than leave the role down.
      for (let attempt = 1; ; attempt++) {
        try {
          role.proc = await spawnDiego(role.args, process.env.CHAOS_DEBUG_DIR ? { DIEGO_LOG_LEVEL: "info" } : {});
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
          await sleep(200);
        }
      }
      role.starts += 1;
      role.state = "up";
    })().finally(() => starting.delete(role));
    starting.set(role, p);
    return p;
  };

  return {
    roles,
    start,
    async kill(role) {
      if (role.state !== "up" || !role.proc) return;
      role.state = "down";
      role.kills += 1;
      await role.proc.kill("SIGKILL");
      if (process.env.CHAOS_DEBUG_DIR) appendFileSync(`${process.env.CHAOS_DEBUG_DIR}/${role.name}.log`, role.proc.stderr() + `\n=== KILLED ${Date.now()}\n`);
    },
    async allUp() {
      await Promise.all(roles.map((r) => (r.state === "down" ? start(r) : starting.get(r))));
    },
    async killAll() {
      await Promise.allSettled([...starting.values()]);
      await Promise.all(roles.map((r) => r.proc?.kill("SIGKILL")));
      if (process.env.CHAOS_DEBUG_DIR) for (const r of roles) appendFileSync(`${process.env.CHAOS_DEBUG_DIR}/${r.name}.log`, (r.proc?.stderr() ?? "") + `\n=== END ${Date.now()}\n`);
      for (const r of roles) r.state = "down";
    },
  };
}
