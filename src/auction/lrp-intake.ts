import type { Logger } from "pino";
import type { LrpPlacementRequest } from "../model/index.js";
import type { LrpStore } from "../store/index.js";

// The placement errors of the LRP instances that fit nowhere (the instances to place come from
// unclaimed-lrps.ts).

/** Writes each placement_error (the record stays UNCLAIMED); returns how many were written. */
export async function recordLrpFailures(
  store: LrpStore,
  failures: Array<{ lrp: LrpPlacementRequest; reason: string }>,
  logger: Logger,
): Promise<number> {
  const written = await Promise.all(
    failures.map(async ({ lrp, reason }) => {
      try {
        await store.failPlacement(lrp.processGuid, lrp.index, reason);
        return true;
      } catch (err) {
        // Claimed, removed or retried meanwhile: nothing to record.
        logger.debug({ err, lrp: lrp.processGuid, index: lrp.index }, "placement error not recorded");
        return false;
      }
    }),
  );
  return written.filter(Boolean).length;
}
