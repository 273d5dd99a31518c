// One LRP instance placed as the 2015 auction did (reference 6.3): the zones holding fewest
// instances of its process first, then within them the cell with the lowest resource score plus
// instances of the same process already there. Pure: the caller applies the winner to its copy
// of the cells, so later placements in the same auction see it.

import type { CellBid, LrpPlacementRequest, Room } from "../model/index.js";

export const NO_COMPATIBLE_CELL = "found no compatible cell";
export const INSUFFICIENT_RESOURCES = "insufficient resources";

export function acceptsRootfs(cell: CellBid, rootFs: string): boolean {
  const colon = rootFs.indexOf(":");
  if (colon <= 0) return false;
  const scheme = rootFs.slice(0, colon);
  if (scheme === "preloaded") return cell.stacks.includes(rootFs.slice(colon + 1));
  return cell.rootfsSchemes.includes(scheme);
}

const fits = (room: Room, lrp: LrpPlacementRequest): boolean =>
  room.memoryMb >= lrp.memoryMb && room.diskMb >= lrp.diskMb && room.containers >= 1;

const usedFraction = (available: number, total: number): number => (total > 0 ? 1 - available / total : 1);

/** Mean fraction of memory, disk and containers used after placing, 0-1. */
export function resourceScore(cell: CellBid, lrp: LrpPlacementRequest): number {
  const a = cell.available;
  const t = cell.total;
  return (
    (usedFraction(a.memoryMb - lrp.memoryMb, t.memoryMb) + usedFraction(a.diskMb - lrp.diskMb, t.diskMb) + usedFraction(a.containers - 1, t.containers)) / 3
  );
}

const instancesOn = (cell: CellBid, processGuid: string): number => cell.lrpInstances?.[processGuid] ?? 0;

export type LrpPlacement = { cell: CellBid } | { error: string };

/** The winning cell among `cells` (evacuating ones never win), or the 2015 placement error. */
export function placeLrp(cells: CellBid[], lrp: LrpPlacementRequest): LrpPlacement {
  const zones = new Map<string, { count: number; cells: CellBid[] }>();
  // Instances per zone count every cell of the zone; only compatible cells can win.
  for (const c of cells) {
    const z = zones.get(c.zone ?? "") ?? { count: 0, cells: [] };
    z.count += instancesOn(c, lrp.processGuid);
    if (acceptsRootfs(c, lrp.rootFs)) z.cells.push(c);
    zones.set(c.zone ?? "", z);
  }
  const ordered = [...zones.values()].filter((z) => z.cells.length > 0).sort((a, b) => a.count - b.count);
  if (ordered.length === 0) return { error: NO_COMPATIBLE_CELL };
  let best: CellBid | undefined;
  let bestScore = Infinity;
  for (let i = 0; i < ordered.length; i++) {
    for (const c of ordered[i]!.cells) {
      if (c.evacuating || !fits(c.available, lrp)) continue;
      const s = resourceScore(c, lrp) + instancesOn(c, lrp.processGuid);
      if (s < bestScore) {
        best = c;
        bestScore = s;
      }
    }
    const next = ordered[i + 1];
    if (best && (!next || next.count !== ordered[i]!.count)) break;
  }
  return best ? { cell: best } : { error: INSUFFICIENT_RESOURCES };
}

/** Takes the instance's room on the winner and counts it there. */
export function commitLrp(cell: CellBid, lrp: LrpPlacementRequest): void {
  cell.available.memoryMb -= lrp.memoryMb;
  cell.available.diskMb -= lrp.diskMb;
  cell.available.containers -= 1;
  cell.lrpInstances = { ...cell.lrpInstances, [lrp.processGuid]: instancesOn(cell, lrp.processGuid) + 1 };
}
