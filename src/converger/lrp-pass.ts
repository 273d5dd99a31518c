import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ActualLrpState, type ActualLRP } from "../gen/diego/v1/lrp_pb.js";
import { restartAt } from "../model/index.js";
import { recordLrpConvergence } from "../metrics/index.js";
import { subjects } from "../nats/index.js";
import { nowNanos, type LrpStore, type StopRequest } from "../store/index.js";
import { applyLrpActions } from "./lrp-apply.js";
import { decideLrps, type LrpAction, type LrpActionKind, type LrpConvergeSettings } from "./lrp-decide.js";

// One LRP convergence pass (reference 5.2): read the actual records first, then the DesiredLRPs,
// the fresh domains and the cells; decide (lrp-decide.ts); carry the actions out (lrp-apply.ts);
// then wake the auctioneer once if anything is to be placed and ask each cell to stop the
// instances retired on it. It also says when the next pass is due for its own sake: the soonest
// crash backoff to end, UNCLAIMED record to go stale or evacuating copy to expire.

export interface LrpCells {
  /** Registered cell ids, as the view showed them when it was last complete. */
  live(): ReadonlySet<string>;
  /** The view has been current for a whole cell TTL. */
  trusted(): boolean;
  /** Asks the bucket itself: true only if the cell is surely gone (a failed read proves nothing). */
  confirmGone(cellId: string): Promise<boolean>;
}

export interface LrpPassDeps {
  store: LrpStore;
  nc: NatsConnection;
  cells: LrpCells;
  settings: LrpConvergeSettings;
  logger: Logger;
}

export type LrpPassReport = Record<LrpActionKind, number> & {
  stops: number;
  skipped: number;
  /** When a pass is next due for a crash backoff, stale UNCLAIMED record or evacuation timeout (ns), if any. */
  nextDueAt?: bigint;
};

/** The stop message of the agreed protocol (subjects.lrpStop). */
export const stopMessage = (s: StopRequest): string => JSON.stringify({ process_guid: s.processGuid, index: s.index, instance_guid: s.instanceGuid });

export async function lrpConvergePass(deps: LrpPassDeps): Promise<LrpPassReport> {
  const { store, nc, settings } = deps;
  const [actuals, evacuating] = await Promise.all([store.listActuals(), store.listEvacuating()]);
  const [desired, fresh] = await Promise.all([store.listDesired(), store.freshDomains()]);
  const ctx = { cells: deps.cells.live(), cellsTrusted: deps.cells.trusted(), freshDomains: new Set(fresh), now: nowNanos(), settings };
  const decided = decideLrps({ ...ctx, desired, actuals, evacuating });
  const actions = await confirmLostCells(decided, deps.cells);
  const applied = await applyLrpActions(store, actions, desired, ctx);

  if (applied.auction.size > 0) nc.publish(subjects.auctionKick);
  for (const stop of applied.stops) nc.publish(subjects.lrpStop(stop.cellId), stopMessage(stop));

  const counts = countActions(actions, applied.stops.length, applied.skipped);
  recordLrpConvergence({
    desiredInstances: desired.reduce((n, d) => n + d.instances, 0),
    actualByState: countStates(actuals, evacuating),
    actions: { ...counts, stops: 0, skipped: 0 },
  });
  return { ...counts, nextDueAt: nextDueAt(actuals, evacuating, settings, ctx.now) };
}

/**
 * A replace deletes the record and starts the index elsewhere: were the cell only slow to beat
 * (its watch lagging here), its container would run on next to the new one. So each lost cell
 * is asked of the bucket first, as the task pass does.
 */
async function confirmLostCells(actions: LrpAction[], cells: LrpCells): Promise<LrpAction[]> {
  const lost = new Set(actions.flatMap((a) => (a.kind === "replace" ? [a.actual.cellId] : [])));
  if (lost.size === 0) return actions;
  const gone = new Set<string>();
  await Promise.all([...lost].map(async (id) => (await cells.confirmGone(id)) && gone.add(id)));
  return actions.filter((a) => a.kind !== "replace" || gone.has(a.actual.cellId));
}

function countActions(actions: LrpAction[], stops: number, skipped: number): Record<LrpActionKind | "stops" | "skipped", number> {
  const report: Record<LrpActionKind | "stops" | "skipped", number> = { create: 0, replace: 0, retire: 0, restart: 0, auction: 0, "remove-evacuating": 0, stops, skipped };
  for (const a of actions) report[a.kind]++;
  return report;
}

const NS_PER_MS = 1_000_000n;

/** The soonest moment a record read in this pass calls for a pass, later than now. */
export function nextDueAt(actuals: ActualLRP[], evacuating: ActualLRP[], s: LrpConvergeSettings, now: bigint): bigint | undefined {
  let soonest: bigint | undefined;
  // What is due already was handled by this pass, or waits for the interval (a record that
  // stays stale UNCLAIMED is kicked again each interval, not in a loop).
  const consider = (t: bigint | undefined): void => {
    if (t !== undefined && t > now && (soonest === undefined || t < soonest)) soonest = t;
  };
  for (const a of actuals) {
    if (a.state === ActualLrpState.CRASHED) consider(restartAt(a.since, a.crashCount, s.crashPolicy));
    // One nanosecond past the threshold: the rule is "longer than".
    else if (a.state === ActualLrpState.UNCLAIMED) consider(a.since + BigInt(s.staleUnclaimedMs) * NS_PER_MS + 1n);
  }
  for (const e of evacuating) consider(e.since + BigInt(s.evacuationTimeoutMs) * NS_PER_MS + 1n);
  return soonest;
}

function countStates(actuals: ActualLRP[], evacuating: ActualLRP[]): Record<string, number> {
  const counts: Record<string, number> = { UNCLAIMED: 0, CLAIMED: 0, RUNNING: 0, CRASHED: 0, EVACUATING: evacuating.length };
  for (const a of actuals) {
    const name = ActualLrpState[a.state];
    if (name && name in counts) counts[name]++;
  }
  return counts;
}
