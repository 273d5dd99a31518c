import type { ActualLRP, DesiredLRPResponse } from "../gen/diego/v1/lrp_pb.js";
import { lrpTransitions as T } from "../model/index.js";
import { ActualLRPExistsError, ActualLRPNotFoundError, type LrpStore, type StopRequest } from "../store/index.js";
import { decideActual, type LrpAction, type LrpConvergeInput } from "./lrp-decide.js";
import PQueue from "p-queue";

// Carries out one pass's LRP actions (lrp-decide.ts) against the store. Each record is judged
// again inside its compare-and-swap: one that changed since the pass read it (a cell claimed it,
// it was restarted already) gets only what the fresh record calls for, which may be nothing.
// What the caller still has to do is returned: the instances to auction (one request per
// process guid, as 2015) and the instances whose cells must stop them.

/** 2015's convergence workers. */
const CONCURRENCY = 20;

export interface LrpApplyResult {
  /** Process guid -> indices to auction. */
  auction: Map<string, number[]>;
  /** Retired instances that their cells must stop. */
  stops: StopRequest[];
  /** Actions that found the record changed and did nothing. */
  skipped: number;
}

export type LrpJudgeContext = Omit<LrpConvergeInput, "desired" | "actuals" | "evacuating">;

export async function applyLrpActions(store: LrpStore, actions: LrpAction[], desired: DesiredLRPResponse[], ctx: LrpJudgeContext): Promise<LrpApplyResult> {
  const byGuid = new Map(desired.map((d) => [d.processGuid, d]));
  const result: LrpApplyResult = { auction: new Map(), stops: [], skipped: 0 };
  const auction = (guid: string, index: number): void => {
    const list = result.auction.get(guid) ?? [];
    list.push(index);
    result.auction.set(guid, list);
  };

  /** Applies `then` if the fresh record still calls for an action of `kind`; else nothing. */
  const rejudged = async (a: ActualLRP, kind: LrpAction["kind"], then: T.ActualTransition): Promise<{ done: boolean; action?: LrpAction }> => {
    let fresh: LrpAction | undefined;
    try {
      await store.apply(a.processGuid, a.index, (current, now) => {
        fresh = decideActual(current, byGuid.get(current.processGuid), { ...ctx, now });
        return fresh?.kind === kind ? then(current, now) : T.UNCHANGED;
      });
    } catch (err) {
      if (err instanceof ActualLRPNotFoundError) return { done: false };
      throw err;
    }
    return { done: fresh?.kind === kind, action: fresh };
  };

  const create = async (processGuid: string, index: number, domain: string): Promise<boolean> => {
    try {
      await store.createActual({ processGuid, index, domain });
      return true;
    } catch (err) {
      if (err instanceof ActualLRPExistsError) return false;
      throw err;
    }
  };

  const lanes = new PQueue({ concurrency: CONCURRENCY });
  await lanes.addAll(actions.map((action) => async () => {
    let done = false;
    switch (action.kind) {
      case "create":
        done = await create(action.processGuid, action.index, action.domain);
        if (done) auction(action.processGuid, action.index);
        break;
      case "replace": {
        const a = action.actual;
        const r = await rejudged(a, "replace", T.remove());
        done = r.done;
        if (done && r.action?.kind === "replace" && r.action.recreate && (await create(a.processGuid, a.index, a.domain))) auction(a.processGuid, a.index);
        break;
      }
      case "retire": {
        const a = action.actual;
        let plan: T.RetirePlan | undefined;
        const r = await rejudged(a, "retire", (current) => {
          plan = T.retirePlan(current);
          return plan.kind === "remove" ? T.REMOVE : T.UNCHANGED;
        });
        done = r.done;
        const p = plan as T.RetirePlan | undefined;
        if (done && p?.kind === "stop") result.stops.push({ processGuid: a.processGuid, index: a.index, cellId: p.cellId, instanceGuid: p.instanceGuid });
        break;
      }
      case "restart": {
        const a = action.actual;
        done = (await rejudged(a, "restart", T.unclaim())).done;
        if (done) auction(a.processGuid, a.index);
        break;
      }
      case "auction": {
        // No change to the record: the pass read it UNCLAIMED for too long; auction it again.
        const fresh = await store.getActual(action.actual.processGuid, action.actual.index);
        done = fresh !== undefined && decideActual(fresh.value, byGuid.get(fresh.value.processGuid), ctx)?.kind === "auction";
        if (done) auction(action.actual.processGuid, action.actual.index);
        break;
      }
      case "remove-evacuating": {
        const e = action.actual;
        done = (await store.removeEvacuating(e.processGuid, e.index, { cellId: e.cellId, instanceGuid: e.instanceGuid }).catch((err: unknown) => {
          if (err instanceof T.ActualLRPTransitionError) return undefined; // replaced by a later evacuation
          throw err;
        })) !== undefined;
        // A live draining cell still runs the container: it stops it (its remove of the instance
        // record is then refused, the replacement holding it).
        if (done && ctx.cells.has(e.cellId)) result.stops.push({ processGuid: e.processGuid, index: e.index, cellId: e.cellId, instanceGuid: e.instanceGuid });
        break;
      }
    }
    if (!done) result.skipped++;
  }));
  return result;
}
