import { ActualLrpState, type ActualLRP, type DesiredLRPResponse } from "../gen/diego/v1/lrp_pb.js";
import { DEFAULT_CRASH_POLICY, shouldRestart, type CrashPolicy } from "../model/index.js";

// What one LRP convergence pass does (reference 5.2), as a pure function of what the pass read:
// the DesiredLRPs, the ActualLRP records (instances and evacuating copies), the registered
// cells, the fresh domains and the clock. The pass carries the actions out, and judges each
// record again with decideActual inside its compare-and-swap, so a record that moved on in the
// meantime is left alone.
//
// Per DesiredLRP: each index 0..instances-1 without a record is missing. Per record, the first
// rule that applies:
//   a. CLAIMED/RUNNING on a cell that is not registered  -> replace (delete; recreate if desired)
//   b. index >= instances, domain fresh                   -> retire (extra)
//   c. CRASHED and its backoff is over                    -> restart (unclaim, auction)
//   d. UNCLAIMED for longer than staleUnclaimedMs         -> auction again
// A record without a DesiredLRP: a. as above; else retired only when its domain is fresh.
// An evacuating copy is dropped when its cell is gone, it is older than the evacuation timeout,
// or the instance it stands in for is RUNNING again.
// Only destruction is gated on freshness (5.3); a missing cell is judged only when the view of
// cells is trusted (current for a whole cell TTL), or a converger that just started would
// replace every instance.

export interface LrpConvergeSettings {
  crashPolicy: CrashPolicy;
  /** 2015: 30 s. */
  staleUnclaimedMs: number;
  /** An evacuating copy older than this is dropped (2015's evacuating TTL: 10 min). */
  evacuationTimeoutMs: number;
}

export const DEFAULT_LRP_CONVERGE_SETTINGS: Readonly<LrpConvergeSettings> = Object.freeze({
  crashPolicy: DEFAULT_CRASH_POLICY,
  staleUnclaimedMs: 30_000,
  evacuationTimeoutMs: 10 * 60_000,
});

export interface LrpConvergeInput {
  desired: DesiredLRPResponse[];
  /** Instance records. */
  actuals: ActualLRP[];
  /** Evacuating copies. */
  evacuating: ActualLRP[];
  /** Registered cell ids. */
  cells: ReadonlySet<string>;
  /** Whether the view of cells has been current for a cell TTL; until then no cell is called lost. */
  cellsTrusted: boolean;
  freshDomains: ReadonlySet<string>;
  /** ns since the Unix epoch. */
  now: bigint;
  settings: LrpConvergeSettings;
}

export type LrpAction =
  /** No record for a desired index: create it UNCLAIMED and auction it. */
  | { kind: "create"; processGuid: string; index: number; domain: string }
  /** Its cell is gone: delete the record, then (recreate) a new UNCLAIMED one to auction. */
  | { kind: "replace"; actual: ActualLRP; recreate: boolean }
  /** Index beyond the desired count, or no longer desired (domain fresh): retire it. */
  | { kind: "retire"; actual: ActualLRP }
  /** CRASHED and the backoff is over: unclaim and auction. */
  | { kind: "restart"; actual: ActualLRP }
  /** UNCLAIMED too long (an auction lost, a placement failed): auction again. */
  | { kind: "auction"; actual: ActualLRP }
  /** An evacuating copy whose cell is gone or whose time is up: delete it. */
  | { kind: "remove-evacuating"; actual: ActualLRP };

export type LrpActionKind = LrpAction["kind"];

/** What a pass does about one instance record (undefined: nothing). */
export function decideActual(a: ActualLRP, desired: DesiredLRPResponse | undefined, input: Omit<LrpConvergeInput, "desired" | "actuals" | "evacuating">): LrpAction | undefined {
  const onLostCell =
    input.cellsTrusted && (a.state === ActualLrpState.CLAIMED || a.state === ActualLrpState.RUNNING) && !input.cells.has(a.cellId);
  if (onLostCell) return { kind: "replace", actual: a, recreate: desired !== undefined && a.index < desired.instances };
  const fresh = input.freshDomains.has(a.domain);
  if (!desired) return fresh ? { kind: "retire", actual: a } : undefined;
  if (a.index >= desired.instances && fresh) return { kind: "retire", actual: a };
  const s = input.settings;
  if (a.state === ActualLrpState.CRASHED && shouldRestart(input.now, a.since, a.crashCount, s.crashPolicy)) return { kind: "restart", actual: a };
  if (a.state === ActualLrpState.UNCLAIMED && input.now - a.since > BigInt(s.staleUnclaimedMs) * 1_000_000n) return { kind: "auction", actual: a };
  return undefined;
}

/**
 * What a pass does about one evacuating copy: dropped when its cell is gone, its time is up, or
 * the instance record it stands in for is RUNNING again (the replacement serves; the draining
 * cell normally drops the copy itself, this is the backstop should it die first).
 */
export function decideEvacuating(
  e: ActualLRP,
  input: Pick<LrpConvergeInput, "cells" | "cellsTrusted" | "now" | "settings">,
  instance?: ActualLRP,
): LrpAction | undefined {
  const cellGone = input.cellsTrusted && !input.cells.has(e.cellId);
  const expired = input.now - e.since > BigInt(input.settings.evacuationTimeoutMs) * 1_000_000n;
  const replaced = instance?.state === ActualLrpState.RUNNING && instance.instanceGuid !== e.instanceGuid;
  return cellGone || expired || replaced ? { kind: "remove-evacuating", actual: e } : undefined;
}

/** Every action of one pass: missing indices first, then the records', in guid and index order. */
export function decideLrps(input: LrpConvergeInput): LrpAction[] {
  const desiredByGuid = new Map(input.desired.map((d) => [d.processGuid, d]));
  const held = new Set(input.actuals.map((a) => `${a.processGuid}\u0000${a.index}`));
  const actions: LrpAction[] = [];
  for (const d of [...input.desired].sort((x, y) => cmp(x.processGuid, y.processGuid))) {
    for (let i = 0; i < d.instances; i++) {
      if (!held.has(`${d.processGuid}\u0000${i}`)) actions.push({ kind: "create", processGuid: d.processGuid, index: i, domain: d.domain });
    }
  }
  for (const a of [...input.actuals].sort(byKey)) {
    const action = decideActual(a, desiredByGuid.get(a.processGuid), input);
    if (action) actions.push(action);
  }
  const instances = new Map(input.actuals.map((a) => [`${a.processGuid}\u0000${a.index}`, a]));
  for (const e of [...input.evacuating].sort(byKey)) {
    const action = decideEvacuating(e, input, instances.get(`${e.processGuid}\u0000${e.index}`));
    if (action) actions.push(action);
  }
  return actions;
}

/** The instances a pass's actions send to the auction, per process guid (one request each, as 2015). */
export function startRequests(actions: LrpAction[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const add = (guid: string, index: number): void => {
    const list = out.get(guid) ?? [];
    list.push(index);
    out.set(guid, list);
  };
  for (const a of actions) {
    if (a.kind === "create") add(a.processGuid, a.index);
    else if ((a.kind === "replace" && a.recreate) || a.kind === "restart" || a.kind === "auction") add(a.actual.processGuid, a.actual.index);
  }
  return out;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (a: ActualLRP, b: ActualLRP): number => cmp(a.processGuid, b.processGuid) || a.index - b.index;
