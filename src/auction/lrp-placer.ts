// placeLrp and commitLrp (schedule-lrp.ts) for every instance of one auction, with the same
// winners: what placeLrp works out again for each instance is here worked out once per auction
// (which cells of each zone take a root filesystem) or kept up to date as instances are placed
// (instances of each process per zone). With 1,000 cells and thousands of instances, placeLrp's
// per-instance map of zones and string parsing was most of an auction's CPU.

import type { CellBid, LrpPlacementRequest } from "../model/index.js";
import { acceptsRootfs, INSUFFICIENT_RESOURCES, NO_COMPATIBLE_CELL, resourceScore, type LrpPlacement } from "./schedule-lrp.js";

export interface LrpPlacer {
  /** The winner (its room taken and the instance counted there), or the 2015 placement error. */
  place(lrp: LrpPlacementRequest): LrpPlacement;
}

interface Zone {
  name: string;
  /** Position among the zones as the cells list them (ties keep this order, as placeLrp's sort does). */
  order: number;
  cells: CellBid[];
}

/** `cells` are the auction's own copies: placing changes their room and instance counts. */
export function createLrpPlacer(cells: CellBid[]): LrpPlacer {
  const zoneOrder = new Map<string, number>();
  for (const c of cells) if (!zoneOrder.has(c.zone ?? "")) zoneOrder.set(c.zone ?? "", zoneOrder.size);
  const zoneOf = new Map<CellBid, string>(cells.map((c) => [c, c.zone ?? ""]));
  /** rootFs -> the zones holding a cell that takes it, each with those cells in order. */
  const compatible = new Map<string, Zone[]>();
  /** process_guid -> zone -> its instances there. */
  const perZone = new Map<string, Map<string, number>>();
  for (const c of cells) c.lrpInstances ??= {};

  const zonesFor = (rootFs: string): Zone[] => {
    let zones = compatible.get(rootFs);
    if (zones) return zones;
    const byName = new Map<string, Zone>();
    for (const c of cells) {
      if (!acceptsRootfs(c, rootFs)) continue;
      const name = zoneOf.get(c)!;
      let z = byName.get(name);
      if (!z) byName.set(name, (z = { name, order: zoneOrder.get(name)!, cells: [] }));
      z.cells.push(c);
    }
    zones = [...byName.values()].sort((a, b) => a.order - b.order);
    compatible.set(rootFs, zones);
    return zones;
  };

  const countsOf = (guid: string): Map<string, number> => {
    let counts = perZone.get(guid);
    if (counts) return counts;
    counts = new Map();
    for (const c of cells) {
      const n = c.lrpInstances![guid];
      if (n) counts.set(zoneOf.get(c)!, (counts.get(zoneOf.get(c)!) ?? 0) + n);
    }
    perZone.set(guid, counts);
    return counts;
  };

  const commit = (cell: CellBid, lrp: LrpPlacementRequest, counts: Map<string, number>): void => {
    cell.available.memoryMb -= lrp.memoryMb;
    cell.available.diskMb -= lrp.diskMb;
    cell.available.containers -= 1;
    cell.lrpInstances![lrp.processGuid] = (cell.lrpInstances![lrp.processGuid] ?? 0) + 1;
    const zone = zoneOf.get(cell)!;
    counts.set(zone, (counts.get(zone) ?? 0) + 1);
  };

  return {
    place(lrp) {
      const zones = zonesFor(lrp.rootFs);
      if (zones.length === 0) return { error: NO_COMPATIBLE_CELL };
      const counts = countsOf(lrp.processGuid);
      const count = (z: Zone): number => counts.get(z.name) ?? 0;
      const ordered = zones.length === 1 ? zones : [...zones].sort((a, b) => count(a) - count(b) || a.order - b.order);
      let best: CellBid | undefined;
      let bestScore = Infinity;
      for (let i = 0; i < ordered.length; i++) {
        for (const c of ordered[i]!.cells) {
          const a = c.available;
          if (c.evacuating || a.memoryMb < lrp.memoryMb || a.diskMb < lrp.diskMb || a.containers < 1) continue;
          const s = resourceScore(c, lrp) + (c.lrpInstances![lrp.processGuid] ?? 0);
          if (s < bestScore) {
            best = c;
            bestScore = s;
          }
        }
        const next = ordered[i + 1];
        if (best && (!next || count(next) !== count(ordered[i]!))) break;
      }
      if (!best) return { error: INSUFFICIENT_RESOURCES };
      commit(best, lrp, counts);
      return { cell: best };
    },
  };
}
