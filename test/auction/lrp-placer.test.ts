import { describe, expect, it } from "vitest";
import { commitLrp, placeLrp, type CellBid, type LrpPlacementRequest } from "../../src/auction/index.js";
import { createLrpPlacer } from "../../src/auction/lrp-placer.js";

// The auction places many instances with lrp-placer.ts, which keeps per auction what placeLrp
// works out per instance: its winners must be placeLrp's, instance by instance, so the 2015
// spreading (zones, then cells, then the emptiest) is unchanged.

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cells(rand: () => number, n: number): CellBid[] {
  return Array.from({ length: n }, (_, i) => {
    const total = { memoryMb: 1024, diskMb: 4096, containers: 8 + Math.floor(rand() * 8) };
    const used = rand();
    return {
      cellId: `c${i}`,
      stacks: rand() < 0.8 ? ["lucid64"] : ["other"],
      rootfsSchemes: rand() < 0.7 ? ["docker"] : [],
      total,
      available: { memoryMb: Math.floor(total.memoryMb * (1 - used)), diskMb: Math.floor(total.diskMb * (1 - used / 2)), containers: Math.floor(total.containers * (1 - used)) },
      taskCount: 0,
      zone: `z${Math.floor(rand() * 4)}`,
      evacuating: rand() < 0.05,
      lrpInstances: (rand() < 0.3 ? { web: Math.floor(rand() * 3) } : {}) as Record<string, number>,
    };
  });
}

const copy = (cs: CellBid[]): CellBid[] => cs.map((c) => ({ ...c, available: { ...c.available }, lrpInstances: { ...c.lrpInstances } }));

describe("the auction's LRP placer", () => {
  it("picks the cell placeLrp picks for every instance, and fails the same ones", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = random(seed);
      const base = cells(rand, 5 + Math.floor(rand() * 60));
      const guids = ["web", "worker", "api"];
      const rootfs = ["preloaded:lucid64", "preloaded:other", "docker:///busybox", "preloaded:missing"];
      const lrps: LrpPlacementRequest[] = Array.from({ length: 150 }, (_, i) => ({
        processGuid: guids[Math.floor(rand() * guids.length)]!,
        index: i,
        rootFs: rootfs[Math.floor(rand() * (rand() < 0.9 ? 2 : rootfs.length))]!,
        memoryMb: 16 + Math.floor(rand() * 200),
        diskMb: 16 + Math.floor(rand() * 200),
      }));
      const reference = copy(base);
      const expected = lrps.map((l) => {
        const r = placeLrp(reference, l);
        if ("error" in r) return r.error;
        commitLrp(r.cell, l);
        return r.cell.cellId;
      });
      const placer = createLrpPlacer(copy(base));
      const got = lrps.map((l) => {
        const r = placer.place(l);
        return "error" in r ? r.error : r.cell.cellId;
      });
      expect({ seed, got }).toEqual({ seed, got: expected });
    }
  });

  it("spreads 10,000 instances of one process over 1,000 cells in 3 zones, zone by zone", () => {
    const many: CellBid[] = Array.from({ length: 1000 }, (_, i) => ({
      cellId: `c${i}`,
      stacks: ["lucid64"],
      rootfsSchemes: ["docker"],
      total: { memoryMb: 16384, diskMb: 65536, containers: 256 },
      available: { memoryMb: 16384, diskMb: 65536, containers: 256 },
      taskCount: 0,
      zone: `z${i % 3}`,
      lrpInstances: {},
    }));
    const placer = createLrpPlacer(many);
    for (let i = 0; i < 10_000; i++) placer.place({ processGuid: "big", index: i, rootFs: "preloaded:lucid64", memoryMb: 8, diskMb: 8 });
    // Zones first (3334/3333/3333), then the cells of each zone evenly.
    const zones = ["z0", "z1", "z2"].map((z) => many.filter((c) => c.zone === z).map((c) => c.lrpInstances!.big ?? 0));
    expect(zones.map((z) => z.reduce((a, b) => a + b, 0)).sort()).toEqual([3333, 3333, 3334]);
    for (const z of zones) expect(Math.max(...z) - Math.min(...z)).toBeLessThanOrEqual(1);
  });
});
