import { describe, expect, it } from "vitest";
import { ByteArena, NO_HANDLE, type ArenaHandle } from "../../src/store/index.js";

// The arena the task index keeps records and their JSON in: what goes in comes out byte for
// byte, through compaction too, and bytes a reader holds never change under it.

const bytesOf = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i) & 0xff;
  return b;
};

describe("byte arena", () => {
  it("gives back each string as put, by view, by length and by copy, small and large", () => {
    const arena = new ByteArena();
    const sizes = [0, 1, 300, 5000, 64 * 1024 + 1, 3 * 1024 * 1024];
    const handles = sizes.map((n, i) => arena.put(bytesOf(n, i)));
    sizes.forEach((n, i) => {
      expect(arena.get(handles[i]!).equals(bytesOf(n, i))).toBe(true);
      expect(arena.length(handles[i]!)).toBe(n);
      const target = Buffer.alloc(n + 3);
      expect(arena.copyTo(handles[i]!, target, 3)).toBe(n);
      expect(target.subarray(3).equals(bytesOf(n, i))).toBe(true);
    });
  });

  it("compacts mostly-garbage slabs: live strings keep their bytes, held views keep theirs, memory goes", () => {
    const arena = new ByteArena();
    const live = new Map<number, ArenaHandle>();
    // 40,000 strings of 600 bytes (~24 MB); nine in ten freed.
    for (let i = 0; i < 40_000; i++) live.set(i, arena.put(bytesOf(600, i)));
    const held = arena.get(live.get(1)!);
    for (const [i, h] of live) {
      if (i % 10 === 0) continue;
      arena.free(h);
      live.delete(i);
    }
    const before = arena.stats();
    expect(arena.wantsCompaction()).toBe(true);
    arena.compact((move) => {
      for (const [i, h] of live) live.set(i, move(h));
    });
    const after = arena.stats();
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.slabBytes).toBeLessThan(before.slabBytes / 4);
    expect(arena.wantsCompaction()).toBe(false);
    for (const [i, h] of live) expect(arena.get(h).equals(bytesOf(600, i))).toBe(true);
    // A reader that held a view of a string since freed (a list being sent) still reads it.
    arena.put(bytesOf(600, 99));
    expect(held.equals(bytesOf(600, 1))).toBe(true);
  });

  it("drops a slab once nothing in it is live, and freeing nothing is harmless", () => {
    const arena = new ByteArena();
    const big = arena.put(bytesOf(100 * 1024, 7));
    expect(arena.stats().slabs).toBe(1);
    arena.free(big);
    arena.free(NO_HANDLE);
    expect(arena.stats()).toMatchObject({ slabs: 0, liveBytes: 0, usedBytes: 0 });
  });
});
