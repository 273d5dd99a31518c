import type { Logger } from "pino";
import { ActualLrpState, type DesiredLRPResponse } from "../gen/diego/v1/lrp_pb.js";
import type { LrpPlacementRequest } from "../model/index.js";
import type { LrpStore } from "../store/index.js";

// The LRP side of an auction: the UNCLAIMED instances to place (the store is the queue, so a
// lost kick only delays), and the placement errors of those that fit nowhere.

/** Every UNCLAIMED instance whose DesiredLRP still wants its index, with what placing it needs. */
export async function unclaimedLrpRequests(store: LrpStore): Promise<LrpPlacementRequest[]> {
  const unclaimed = (await store.listActuals()).filter((a) => a.state === ActualLrpState.UNCLAIMED);
  if (unclaimed.length === 0) return [];
  const desired = new Map<string, Promise<DesiredLRPResponse | undefined>>();
  const desiredOf = (guid: string): Promise<DesiredLRPResponse | undefined> => {
    let d = desired.get(guid);
    if (!d) {
      d = store.getDesired(guid).then((s) => s?.value);
      desired.set(guid, d);
    }
    return d;
  };
  const out: LrpPlacementRequest[] = [];
  await Promise.all(
    unclaimed.map(async (a) => {
      const d = await desiredOf(a.processGuid);
      // Deleted, or an index above the instance count (an extra the converger retires).
      if (!d || a.index >= d.instances) return;
      out.push({ processGuid: a.processGuid, index: a.index, rootFs: d.rootfs, memoryMb: Math.max(0, d.memoryMb), diskMb: Math.max(0, d.diskMb) });
    }),
  );
  return out;
}

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
