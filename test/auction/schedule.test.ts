import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { CellPresenceSchema } from "../../src/gen/diego/v1/cell_pb.js";
import {
  INSUFFICIENT_RESOURCES,
  NO_COMPATIBLE_CELL,
  schedule,
  silentBids,
  type CellBid,
  type PlacementRequest,
} from "../../src/auction/index.js";

const cell = (cellId: string, over: Partial<CellBid> = {}): CellBid => ({
  cellId,
  stacks: ["lucid64"],
  rootfsSchemes: ["docker"],
  total: { memoryMb: 1024, diskMb: 4096, containers: 10 },
  available: { memoryMb: 1024, diskMb: 4096, containers: 10 },
  taskCount: 0,
  ...over,
});

const task = (taskGuid: string, over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  taskGuid,
  stack: "lucid64",
  rootFs: "",
  memoryMb: 64,
  diskMb: 64,
  ...over,
});

describe("schedule", () => {
  it("fails every task with `found no compatible cell` when there are no cells", () => {
    const r = schedule([task("a")], []);
    expect(r.failures).toEqual([{ taskGuid: "a", reason: NO_COMPATIBLE_CELL }]);
  });

  it("places only on cells of the task's stack and root filesystem", () => {
    const cells = [cell("windows", { stacks: ["windows2012"] }), cell("linux")];
    const r = schedule([task("a"), task("b", { rootFs: "preloaded:lucid64" }), task("c", { rootFs: "docker:///x/y" })], cells);
    expect(r.failures).toEqual([]);
    expect(r.placements.get("linux")?.sort()).toEqual(["a", "b", "c"]);
    const none = schedule([task("d", { rootFs: "preloaded:unknownstack" })], cells);
    expect(none.failures[0]?.reason).toBe(NO_COMPATIBLE_CELL);
    const noDocker = schedule([task("e", { rootFs: "docker:///x/y" })], [cell("plain", { rootfsSchemes: [] })]);
    expect(noDocker.failures[0]?.reason).toBe(NO_COMPATIBLE_CELL);
  });

  it("fails with `insufficient resources` a task bigger than every compatible cell", () => {
    const r = schedule([task("big", { memoryMb: 4096 })], [cell("a"), cell("b")]);
    expect(r.failures).toEqual([{ taskGuid: "big", reason: INSUFFICIENT_RESOURCES }]);
    const disk = schedule([task("disk", { diskMb: 8192 })], [cell("a")]);
    expect(disk.failures).toEqual([{ taskGuid: "disk", reason: INSUFFICIENT_RESOURCES }]);
  });

  it("keeps a task that fits an empty cell waiting while the cells are full", () => {
    const full = schedule([task("x")], [cell("a", { available: { memoryMb: 1024, diskMb: 4096, containers: 0 } })]);
    expect(full.failures).toEqual([]);
    expect(full.waiting).toEqual(["x"]);
  });

  it("places the larger task first when only one fits", () => {
    const small = cell("only", { available: { memoryMb: 600, diskMb: 4096, containers: 10 } });
    const r = schedule([task("small", { memoryMb: 100 }), task("large", { memoryMb: 500 })], [small]);
    expect(r.placements.get("only")).toEqual(["large", "small"]);
    const tight = schedule([task("small", { memoryMb: 200 }), task("large", { memoryMb: 500 })], [small]);
    expect(tight.placements.get("only")).toEqual(["large"]);
    expect(tight.waiting).toEqual(["small"]);
  });

  it("prefers the emptiest, least loaded cell and spreads a batch", () => {
    const busy = cell("busy", { available: { memoryMb: 256, diskMb: 1024, containers: 4 }, taskCount: 6 });
    const idle = cell("idle");
    expect(schedule([task("a")], [busy, idle]).placements.get("idle")).toEqual(["a"]);
    const spread = schedule(["1", "2", "3", "4"].map((g) => task(g)), [cell("x"), cell("y")]);
    expect(spread.placements.get("x")).toHaveLength(2);
    expect(spread.placements.get("y")).toHaveLength(2);
  });

  it("lets a task wait, not fail, when its only compatible cell is registered but did not bid in time", () => {
    const registered = [
      create(CellPresenceSchema, {
        cellId: "slow",
        stacks: ["cflinuxfs2"],
        rootfsSchemes: ["docker"],
        capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
        available: { memoryMb: 1024, diskMb: 4096, containers: 10 },
      }),
      create(CellPresenceSchema, { cellId: "fast", stacks: ["lucid64"], capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 } }),
    ];
    const bids = [cell("fast")];
    const silent = silentBids(registered, bids);
    expect(silent.map((b) => [b.cellId, b.available.containers])).toEqual([["slow", 0]]);
    const r = schedule(
      [task("fits", { stack: "cflinuxfs2" }), task("huge", { stack: "cflinuxfs2", memoryMb: 4096 }), task("nowhere", { stack: "windows" })],
      [...bids, ...silent],
    );
    expect(r.placements.size).toBe(0);
    expect(r.waiting).toEqual(["fits"]);
    expect(r.failures).toEqual([
      { taskGuid: "huge", reason: INSUFFICIENT_RESOURCES },
      { taskGuid: "nowhere", reason: NO_COMPATIBLE_CELL },
    ]);
  });
});
