import { registry } from "../metrics/index.js";
import { runCell } from "./cell-commands.js";
import type { FromCell, ToCell } from "./forked-cell.js";
import { createLogger, type LogFormat } from "./logger.js";
import { InvalidSettingError } from "./settings.js";

// The cell process `diego up --cell-process own` forks (forked-cell.ts): runs one cell until up
// says stop, or until up is gone (the IPC channel closes, even when up was killed with SIGKILL).

const send = (m: FromCell): void => {
  if (process.connected) process.send!(m);
};

const STOP_BUDGET_MS = 15_000;
let stopCell: (() => Promise<void>) | undefined;
let stopping = false;
const stopAndExit = (): void => {
  if (stopping) return;
  stopping = true;
  // With up gone its nats-server is too: a stop that waits on NATS must not hold the process.
  setTimeout(() => process.exit(1), STOP_BUDGET_MS).unref();
  void (stopCell?.() ?? Promise.resolve()).finally(() => process.exit(0));
};

process.on("message", (m: ToCell) => {
  if (m.type === "start") void start(m);
  else if (m.type === "stop") stopAndExit();
  else if (m.type === "metrics") void registry.getMetricsAsJSON().then((metrics) => send({ type: "metrics", id: m.id, metrics }));
});
process.on("disconnect", stopAndExit);
// up stops the cell itself; a Ctrl-C reaching the whole process group must not stop it twice.
process.on("SIGINT", () => undefined);
process.on("SIGTERM", stopAndExit);

async function start(m: Extract<ToCell, { type: "start" }>): Promise<void> {
  const logger = createLogger(m.logLevel, "diego-up", m.logFormat as LogFormat).child({ component: "cell" });
  try {
    const cell = await runCell(m.settings, m.natsUrl, m.natsAuth, logger, m.fleet, new Set(m.given));
    // Like the cell inside up's own process: its instances stop at once, no evacuation.
    stopCell = () => cell.stop();
    if (stopping) return void (await cell.stop());
    send({ type: "ready", cellId: cell.cellId });
  } catch (err) {
    logger.error({ err }, "the cell failed to start");
    send({ type: "failed", message: (err as Error).message, invalidSetting: err instanceof InvalidSettingError });
    process.exit(1);
  }
}
