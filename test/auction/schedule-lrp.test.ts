import { describe, expect, it } from "vitest";
import { INSUFFICIENT_RESOURCES, NO_COMPATIBLE_CELL, schedule, type CellBid, type LrpPlacementRequest, type PlacementRequest } from "../../src/auction/index.js";

// The 2015 LRP placement (reference 6.2, 6.3) as the pure scheduler does it.

const cell = (cellId: string, over: Partial<CellBid> = {}): CellBid => ({
  cellId,
  stacks: ["lucid64"],
  rootfsSchemes: ["docker"],
  total: { memoryMb: 1024, diskMb: 4096, containers: 10 },
  available: { memoryMb: 1024, diskMb: 4096, containers: 10 },
  taskCount: 0,
  zone: "z1",
  ...over,
});

const lrp = (processGuid: string, index: number, over: Partial<LrpPlacementRequest> = {}): LrpPlacementRequest => ({
  processGuid,
  index,
  rootFs: "preloaded:lucid64",
  memoryMb: 64,
  diskMb: 64,
  ...over,
});

const task = (taskGuid: string, memoryMb = 64): PlacementRequest => ({ taskGuid, stack: "lucid64", rootFs: "", memoryMb, diskMb: 64 });

/** cellId -> "guid.index" placed there. */
const placed = (r: ReturnType<typeof schedule>): Record<string, string[]> =>
  Object.fromEntries([...r.lrpPlacements].map(([c, ls]) => [c, ls.map((l) => `${l.processGuid}.${l.index}`).sort()]));

describe("LRP placement", () => {
  it("spreads the instances of one process over the cells before packing any", () => {
    const r = schedule([], [cell("a"), cell("b"), cell("c")], [0, 1, 2, 3, 4, 5].map((i) => lrp("web", i)));
    expect(Object.values(placed(r)).map((l) => l.length)).toEqual([2, 2, 2]);
    expect(r.lrpFailures).toEqual([]);
  });

  it("counts instances already running on a cell: a new index goes to the cell without one", () => {
    const busy = cell("busy", { lrpInstances: { web: 1 }, available: { memoryMb: 1000, diskMb: 4000, containers: 9 } });
    // The empty cell is the fuller one, yet it holds no instance of web.
    const full = cell("full", { available: { memoryMb: 200, diskMb: 400, containers: 2 }, lrpInstances: { other: 8 } });
    expect(placed(schedule([], [busy, full], [lrp("web", 1)]))).toEqual({ full: ["web.1"] });
  });

  it("spreads across zones first: the zone holding fewest instances wins even with a busier cell", () => {
    const z1 = [cell("a1", { zone: "z1", lrpInstances: { web: 1 } }), cell("a2", { zone: "z1" })];
    const z2 = cell("b1", { zone: "z2", available: { memoryMb: 300, diskMb: 1000, containers: 3 } });
    expect(placed(schedule([], [...z1, z2], [lrp("web", 1)]))).toEqual({ b1: ["web.1"] });
  });

  it("places every index 0 first, then tasks, then the other indices", () => {
    // Room for two: index 0 and the task get it, index 1 does not.
    const small = cell("only", { total: { memoryMb: 128, diskMb: 4096, containers: 10 }, available: { memoryMb: 128, diskMb: 4096, containers: 10 } });
    const r = schedule([task("t1")], [small], [lrp("web", 1), lrp("web", 0)]);
    expect(placed(r)).toEqual({ only: ["web.0"] });
    expect(r.placements.get("only")).toEqual(["t1"]);
    expect(r.lrpFailures).toEqual([{ lrp: lrp("web", 1), reason: INSUFFICIENT_RESOURCES }]);
  });

  it("fails with the 2015 placement errors: no cell of the stack, or too big for every cell", () => {
    const r = schedule([], [cell("a")], [lrp("fruit", 0, { rootFs: "preloaded:fruitfs" }), lrp("big", 0, { memoryMb: 1024 * 1024 }), lrp("sock", 0, { rootFs: "socker://hello" })]);
    expect(r.lrpFailures.map((f) => [f.lrp.processGuid, f.reason]).sort()).toEqual([
      ["big", INSUFFICIENT_RESOURCES],
      ["fruit", NO_COMPATIBLE_CELL],
      ["sock", NO_COMPATIBLE_CELL],
    ]);
    expect(schedule([], [], [lrp("web", 0)]).lrpFailures[0]!.reason).toBe(NO_COMPATIBLE_CELL);
  });

  it("gives a draining cell nothing: neither instances nor tasks", () => {
    const r = schedule([task("t1")], [cell("draining", { evacuating: true }), cell("live")], [lrp("web", 0), lrp("web", 1)]);
    expect(placed(r)).toEqual({ live: ["web.0", "web.1"] });
    expect(r.placements.get("live")).toEqual(["t1"]);
    expect(r.placements.has("draining")).toBe(false);
  });

  it("accepts docker root filesystems on cells that pull images", () => {
    const r = schedule([], [cell("a", { rootfsSchemes: [] }), cell("b")], [lrp("img", 0, { rootFs: "docker:///library/busybox" })]);
    expect(placed(r)).toEqual({ b: ["img.0"] });
  });
});
