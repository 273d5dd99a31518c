// The placement algorithm of Diego's 2015 auction, as a pure function: larger tasks first; only
// cells of the task's stack that accept its root filesystem and have room; lowest score wins,
// where score = mean fraction of memory, disk and containers used after placement + task count.
// Unlike 2015, a task that would fit an empty cell is not failed when the cells are merely busy:
// it waits for room (a burst queues instead of failing); one bigger than every cell fails.
// LRP instances go with them in the 2015 order (reference 6.2): every index 0 first, then the
// tasks, then the other indices; each is placed as schedule-lrp.ts says (lrp-placer.ts). A draining cell gets nothing.

import type { CellBid, LrpPlacementRequest, PlacementRequest, Room } from "../model/index.js";
import { createLrpPlacer } from "./lrp-placer.js";
import { INSUFFICIENT_RESOURCES, NO_COMPATIBLE_CELL } from "./schedule-lrp.js";

export { INSUFFICIENT_RESOURCES, NO_COMPATIBLE_CELL };

export interface ScheduleResult {
  /** cellId -> task guids placed there, in placement order. */
  placements: Map<string, string[]>;
  /** Tasks no cell can ever take as the cells are now (wrong stack, or bigger than any cell). */
  failures: Array<{ taskGuid: string; reason: string }>;
  /** Tasks that fit an empty compatible cell but not the room left now: they wait for room. */
  waiting: string[];
  /** cellId -> LRP instances placed there. */
  lrpPlacements: Map<string, LrpPlacementRequest[]>;
  /** LRP instances that fit no cell now, with the 2015 placement_error. */
  lrpFailures: Array<{ lrp: LrpPlacementRequest; reason: string }>;
}

export function isCompatible(cell: CellBid, task: PlacementRequest): boolean {
  if (!cell.stacks.includes(task.stack)) return false;
  if (task.rootFs === "") return true;
  const colon = task.rootFs.indexOf(":");
  const scheme = task.rootFs.slice(0, colon);
  if (scheme === "preloaded") return cell.stacks.includes(task.rootFs.slice(colon + 1));
  return cell.rootfsSchemes.includes(scheme);
}

function fits(room: Room, task: PlacementRequest): boolean {
  return room.memoryMb >= task.memoryMb && room.diskMb >= task.diskMb && room.containers >= 1;
}

const usedFraction = (available: number, total: number): number => (total > 0 ? 1 - available / total : 1);

export function score(cell: CellBid, task: PlacementRequest): number {
  const a = cell.available;
  const t = cell.total;
  const mean =
    (usedFraction(a.memoryMb - task.memoryMb, t.memoryMb) +
      usedFraction(a.diskMb - task.diskMb, t.diskMb) +
      usedFraction(a.containers - 1, t.containers)) /
    3;
  return mean + cell.taskCount;
}

const NO_ROOM: Room = { memoryMb: 0, diskMb: 0, containers: 0 };

export function schedule(tasks: PlacementRequest[], cells: CellBid[], lrps: LrpPlacementRequest[] = []): ScheduleResult {
  // Work on copies: each placement must see the room earlier ones took.
  const live = cells.map((c) => ({ ...c, available: c.evacuating ? { ...NO_ROOM } : { ...c.available }, lrpInstances: { ...c.lrpInstances } }));
  const ordered = [...tasks].sort((a, b) => b.memoryMb - a.memoryMb);
  const placements = new Map<string, string[]>();
  const failures: ScheduleResult["failures"] = [];
  const waiting: string[] = [];
  const lrpPlacements = new Map<string, LrpPlacementRequest[]>();
  const lrpFailures: ScheduleResult["lrpFailures"] = [];
  const byIndex = [...lrps].sort((a, b) => a.index - b.index || b.memoryMb - a.memoryMb);
  const placer = createLrpPlacer(live);
  const placeLrps = (batch: LrpPlacementRequest[]): void => {
    for (const lrp of batch) {
      const placed = placer.place(lrp);
      if ("error" in placed) {
        lrpFailures.push({ lrp, reason: placed.error });
        continue;
      }
      const list = lrpPlacements.get(placed.cell.cellId) ?? [];
      list.push(lrp);
      lrpPlacements.set(placed.cell.cellId, list);
    }
  };
  placeLrps(byIndex.filter((l) => l.index === 0));
  for (const task of ordered) {
    const compatible = live.filter((c) => isCompatible(c, task));
    if (compatible.length === 0) {
      failures.push({ taskGuid: task.taskGuid, reason: NO_COMPATIBLE_CELL });
      continue;
    }
    let best: (typeof live)[number] | undefined;
    let bestScore = Infinity;
    for (const c of compatible) {
      if (!fits(c.available, task)) continue;
      const s = score(c, task);
      if (s < bestScore) {
        best = c;
        bestScore = s;
      }
    }
    if (!best) {
      if (compatible.some((c) => fits(c.total, task))) waiting.push(task.taskGuid);
      else failures.push({ taskGuid: task.taskGuid, reason: INSUFFICIENT_RESOURCES });
      continue;
    }
    best.available.memoryMb -= task.memoryMb;
    best.available.diskMb -= task.diskMb;
    best.available.containers -= 1;
    best.taskCount += 1;
    const list = placements.get(best.cellId) ?? [];
    list.push(task.taskGuid);
    placements.set(best.cellId, list);
  }
  placeLrps(byIndex.filter((l) => l.index !== 0));
  return { placements, failures, waiting, lrpPlacements, lrpFailures };
}
