import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { addChildMetrics, type MetricsJson } from "../metrics/index.js";
import type { NatsAuth } from "../nats/index.js";
import type { CellCommandSettings, FleetOptions } from "./cell-commands.js";
import { InvalidSettingError } from "./settings.js";

// `diego up`'s cell in a Node process of its own (--cell-process own): starting containers
// keeps a cell's event loop busy, and in the API's process that made requests wait (see
// docs/load.md). The child talks to NATS itself, as a fleet's cell does; up starts and stops it
// over an IPC channel and adds its metrics to its own /metrics.

export type ToCell =
  | { type: "start"; settings: CellCommandSettings; given: string[]; natsUrl: string; natsAuth: NatsAuth; fleet: FleetOptions; logLevel: string; logFormat: string }
  | { type: "stop" }
  | { type: "metrics"; id: number };

export type FromCell =
  | { type: "ready"; cellId: string }
  | { type: "failed"; message: string; invalidSetting: boolean }
  | { type: "metrics"; id: number; metrics: MetricsJson };

export interface ForkedCell {
  readonly cellId: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const STOP_BUDGET_MS = 20_000;
const METRICS_TIMEOUT_MS = 2_000;

export class CellProcessError extends Error {
  override readonly name = "CellProcessError";
}

/** The child's entry: the compiled .js beside this file, or the .ts source under tsx. */
function childEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const ts = here.replace(/forked-cell\.(js|ts)$/, "cell-child.ts");
  const js = here.replace(/forked-cell\.(js|ts)$/, "cell-child.js");
  return here.endsWith(".ts") && existsSync(ts) ? ts : js;
}

export async function startForkedCell(
  start: Omit<Extract<ToCell, { type: "start" }>, "type">,
  logger: Logger,
): Promise<ForkedCell> {
  // The same Node flags (tsx's loader when run from the sources); logs go straight to up's stderr.
  const child: ChildProcess = fork(childEntry(), [], { execArgv: process.execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const send = (m: ToCell): void => {
    if (child.connected) child.send(m);
  };
  const cellId = await new Promise<string>((resolve, reject) => {
    child.on("message", (m: FromCell) => {
      if (m.type === "ready") resolve(m.cellId);
      else if (m.type === "failed") reject(m.invalidSetting ? new InvalidSettingError(m.message) : new CellProcessError(m.message));
    });
    void exited.then((code) => reject(new CellProcessError(`the cell process exited (${code}) before it was ready`)));
    send({ type: "start", ...start });
  }).catch(async (err: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw err;
  });

  let seq = 0;
  const waiting = new Map<number, (m: MetricsJson) => void>();
  child.on("message", (m: FromCell) => {
    if (m.type === "metrics") waiting.get(m.id)?.(m.metrics);
  });
  const metrics = (): Promise<MetricsJson> =>
    new Promise((resolve, reject) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new CellProcessError("the cell process did not send its metrics"));
      }, METRICS_TIMEOUT_MS);
      waiting.set(id, (m) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(m);
      });
      send({ type: "metrics", id });
    });
  const removeMetrics = addChildMetrics(metrics);
  void exited.then((code) => {
    removeMetrics();
    if (!stopping) logger.error({ code }, "the cell process exited; the cell's tasks fail through the converger");
  });

  let stopping = false;
  return {
    cellId,
    pid: child.pid!,
    async stop() {
      stopping = true;
      send({ type: "stop" });
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_BUDGET_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
