import type { Logger } from "pino";
import type { CellPresence } from "../../../src/gen/diego/v1/cell_pb.js";
import type { CellRegistry } from "../../../src/store/index.js";

/**
 * Announces the cell every intervalMs until stopped. Beats go out on a fixed clock, each its own
 * write: one that hangs (a reply lost in a NATS restart waits for its timeout) never holds back
 * the next, so a cell that is alive looks alive again as soon as NATS is.
 */
export function startHeartbeat(
  registry: CellRegistry,
  presence: () => CellPresence,
  intervalMs: number,
  logger?: Logger,
): { stop(): void; beat(): Promise<void> } {
  let failing = 0;
  const beat = async (): Promise<void> => {
    try {
      await registry.announce(presence());
      if (failing > 0) logger?.info({ failed: failing }, "heartbeat went through again");
      failing = 0;
    } catch (err) {
      // The first failure and every tenth after it: an outage is visible without a flood.
      if (failing++ % 10 === 0) logger?.warn({ err: (err as Error).message }, "heartbeat failed");
    }
  };
  const timer = setInterval(() => void beat(), intervalMs);
  return {
    beat,
    stop: () => clearInterval(timer),
  };
}
