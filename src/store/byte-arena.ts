// Many small immutable byte strings (stored records, their cached JSON) kept in a few large
// slabs instead of one ArrayBuffer each: V8 spends ~200 bytes of bookkeeping on every
// ArrayBuffer, as much as a task record itself, and the garbage collector tracks each one.
//
// A string is written once at the end of the current slab, prefixed by its length, and named by
// a number (its slab and offset: a small integer V8 stores inline). Freed space is not reused
// in place: bytes handed out stay valid for as long as the caller holds them, even after the
// string is freed or moved. Instead, slabs that are mostly garbage are compacted: their live
// strings are copied to the current slab by whoever holds the handles (`compact`), and the old
// slabs are dropped (their memory goes once no reader holds a view into them).

const SLAB_BYTES = 1 << 20;
/** A string this large gets a slab of its own, so a slab is not left mostly empty. */
const OWN_SLAB_BYTES = 64 * 1024;
const PREFIX = 4;
/** Compaction runs once garbage exceeds this share of the live bytes, and this many bytes. */
const GARBAGE_RATIO = 0.5;
const GARBAGE_MIN_BYTES = 4 * SLAB_BYTES;
/** A slab is emptied by compaction when fewer than this share of its bytes are live. */
const VICTIM_LIVE_RATIO = 0.5;

/** A string's handle: slab * 2^20 + offset (an offset of 0 for a slab of its own). */
export type ArenaHandle = number;
/** No string. */
export const NO_HANDLE = -1;

export interface ArenaStats {
  /** Bytes of strings not freed (with their 4-byte length prefixes). */
  liveBytes: number;
  /** Bytes written into slabs still held: live and garbage. */
  usedBytes: number;
  /** Bytes of the slabs held. */
  slabBytes: number;
  slabs: number;
}

interface Slab {
  readonly buf: Buffer;
  /** Bytes written (the next string goes here). */
  used: number;
  /** Bytes of strings not yet freed. */
  live: number;
}

export class ByteArena {
  private readonly slabs: Array<Slab | undefined> = [];
  private readonly freeIds: number[] = [];
  private current = -1;
  private liveBytes = 0;
  private usedBytes = 0;
  /**
   * Garbage that makes the next compaction worth it: what the last one left (in slabs too live
   * to empty) and GARBAGE_MIN_BYTES more, so that each walk of the handles frees that much.
   */
  private garbageBeforeNext = GARBAGE_MIN_BYTES;
  /** Slabs being emptied by the compaction under way. */
  private victims?: Set<number>;

  /** Copies `bytes` in; returns its handle. */
  put(bytes: Uint8Array): ArenaHandle {
    const need = PREFIX + bytes.length;
    let id: number;
    let slab: Slab;
    if (need > OWN_SLAB_BYTES) {
      id = this.newSlab(need);
      slab = this.slabs[id]!;
    } else {
      const cur = this.current >= 0 ? this.slabs[this.current] : undefined;
      if (!cur || cur.used + need > cur.buf.length) this.current = this.newSlab(SLAB_BYTES);
      id = this.current;
      slab = this.slabs[id]!;
    }
    const at = slab.used;
    slab.buf.writeUInt32LE(bytes.length, at);
    slab.buf.set(bytes, at + PREFIX);
    slab.used += need;
    slab.live += need;
    this.usedBytes += need;
    this.liveBytes += need;
    return id * SLAB_BYTES + at;
  }

  /** The string's bytes: a view into its slab, valid for as long as it is held. */
  get(h: ArenaHandle): Buffer {
    const slab = this.slabs[Math.floor(h / SLAB_BYTES)]!;
    const at = h % SLAB_BYTES;
    const len = slab.buf.readUInt32LE(at);
    return slab.buf.subarray(at + PREFIX, at + PREFIX + len);
  }

  /** The string's length in bytes. */
  length(h: ArenaHandle): number {
    return this.slabs[Math.floor(h / SLAB_BYTES)]!.buf.readUInt32LE(h % SLAB_BYTES);
  }

  /** Copies the string into `target` at `at` (which must have room); returns its length. */
  copyTo(h: ArenaHandle, target: Uint8Array, at: number): number {
    const slab = this.slabs[Math.floor(h / SLAB_BYTES)]!;
    const from = (h % SLAB_BYTES) + PREFIX;
    const len = slab.buf.readUInt32LE(from - PREFIX);
    return slab.buf.copy(target, at, from, from + len);
  }

  /** Marks the string garbage; a slab with nothing live left is dropped. */
  free(h: ArenaHandle): void {
    if (h === NO_HANDLE) return;
    const id = Math.floor(h / SLAB_BYTES);
    const slab = this.slabs[id]!;
    const size = PREFIX + slab.buf.readUInt32LE(h % SLAB_BYTES);
    slab.live -= size;
    this.liveBytes -= size;
    // A victim of the compaction under way goes at its end (handles into it are being moved).
    if (slab.live === 0 && id !== this.current && !this.victims?.has(id)) this.dropSlab(id);
  }

  /** Whether enough is garbage that `compact` is worth its copying. */
  wantsCompaction(): boolean {
    const garbage = this.usedBytes - this.liveBytes;
    return garbage > this.garbageBeforeNext && garbage > GARBAGE_RATIO * this.liveBytes;
  }

  /**
   * Empties the slabs that are mostly garbage: `moveAll(move)` must pass every live handle to
   * `move` and keep the handle it returns instead.
   */
  compact(moveAll: (move: (h: ArenaHandle) => ArenaHandle) => void): void {
    const victims = new Set<number>();
    this.slabs.forEach((s, id) => {
      if (s && id !== this.current && s.live < VICTIM_LIVE_RATIO * s.used) victims.add(id);
    });
    try {
      if (victims.size === 0) return;
      this.victims = victims;
      moveAll((h) => (h !== NO_HANDLE && victims.has(Math.floor(h / SLAB_BYTES)) ? this.move(h) : h));
    } finally {
      this.victims = undefined;
      for (const id of victims) if (this.slabs[id]) this.dropSlab(id);
      this.garbageBeforeNext = this.usedBytes - this.liveBytes + GARBAGE_MIN_BYTES;
    }
  }

  /** What is held: live string bytes, and bytes in slabs (live, garbage and unused room). */
  stats(): ArenaStats {
    let slabBytes = 0;
    let slabs = 0;
    for (const s of this.slabs) if (s) (slabBytes += s.buf.length), slabs++;
    return { liveBytes: this.liveBytes, usedBytes: this.usedBytes, slabBytes, slabs };
  }

  private move(h: ArenaHandle): ArenaHandle {
    const moved = this.put(this.get(h));
    this.free(h);
    return moved;
  }

  private newSlab(size: number): number {
    const id = this.freeIds.pop() ?? this.slabs.length;
    this.slabs[id] = { buf: Buffer.allocUnsafeSlow(size), used: 0, live: 0 };
    return id;
  }

  private dropSlab(id: number): void {
    const slab = this.slabs[id]!;
    this.usedBytes -= slab.used;
    this.liveBytes -= slab.live;
    this.slabs[id] = undefined;
    this.freeIds.push(id);
  }
}
