import type { Logger } from "pino";
import type { CellPresence } from "../../../src/gen/diego/v1/cell_pb.js";
import type { CellRegistry } from "../../../src/store/index.js";

/** Announces the cell every intervalMs until stopped; a failed beat is retried on the next. */
export function startHeartbeat(
  registry: CellRegistry,
  presence: () => CellPresence,
  intervalMs: number,
  logger?: Logger,
): { stop(): void; beat(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const beat = async (): Promise<void> => {
    try {
      await registry.announce(presence());
    } catch (err) {
      logger?.warn({ err }, "heartbeat failed");
    }
  };
  const loop = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void beat().then(loop), intervalMs);
  };
  loop();
  return {
    beat,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
