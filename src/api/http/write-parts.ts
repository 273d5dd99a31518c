import type { ServerResponse } from "node:http";
import type { Res } from "./types.js";

// Large replies made of many small encoded parts (a list of 100,000 tasks: 60 MB of JSON, 30 MB
// of protobuf), written without building the reply first: the parts are copied into a few
// buffers of SLICE_BYTES, each reused once the connection has taken it. In one fresh buffer,
// faulting in the new pages cost more than the copying, and the process kept the memory.

/** Encoded parts, written one after another: their lengths are known before their bytes. */
export interface EncodedParts {
  readonly count: number;
  length(i: number): number;
  /** Copies part `i` into `target` at `at` (which has room); returns its length. */
  copyTo(i: number, target: Buffer, at: number): number;
}

const SLICE_BYTES = 64 * 1024;
const SLICES_IN_FLIGHT = 4;

export const bufferParts = (parts: readonly Uint8Array[]): EncodedParts => ({
  count: parts.length,
  length: (i) => parts[i]!.length,
  copyTo(i, target, at) {
    target.set(parts[i]!, at);
    return parts[i]!.length;
  },
});

/** Parts in a row: those of `lists[0]`, then those of `lists[1]`, ... */
export function concatParts(...lists: EncodedParts[]): EncodedParts {
  const locate = (i: number): [EncodedParts, number] => {
    for (const l of lists) {
      if (i < l.count) return [l, i];
      i -= l.count;
    }
    throw new RangeError("no such part");
  };
  return {
    count: lists.reduce((n, l) => n + l.count, 0),
    length: (i) => {
      const [l, j] = locate(i);
      return l.length(j);
    },
    copyTo: (i, target, at) => {
      const [l, j] = locate(i);
      return l.copyTo(j, target, at);
    },
  };
}

/** The parts with one byte between each two (a comma). */
export function separatedParts(parts: EncodedParts, separator: number): EncodedParts {
  const last = parts.count - 1;
  return {
    count: parts.count,
    length: (i) => parts.length(i) + (i < last ? 1 : 0),
    copyTo(i, target, at) {
      const n = parts.copyTo(i, target, at);
      if (i === last) return n;
      target[at + n] = separator;
      return n + 1;
    },
  };
}

export function partsLength(parts: EncodedParts): number {
  let size = 0;
  for (let i = 0; i < parts.count; i++) size += parts.length(i);
  return size;
}

/** Writes the parts and ends the reply (headers already set); stops if the client goes. */
export async function writeParts(res: Res, parts: EncodedParts): Promise<void> {
  const out = createSliceWriter(res);
  let slice = await out.take();
  let at = 0;
  for (let i = 0; i < parts.count; i++) {
    const length = parts.length(i);
    if (at + length > slice.length) {
      out.send(slice, at);
      slice = await out.take();
      at = 0;
      if (out.gone()) return;
      if (length > slice.length) {
        // A part larger than a slice goes in a buffer of its own.
        const own = Buffer.allocUnsafe(length);
        parts.copyTo(i, own, 0);
        out.send(own, length, false);
        continue;
      }
    }
    at += parts.copyTo(i, slice, at);
  }
  res.end(slice.subarray(0, at));
}

interface SliceWriter {
  /** A slice free to fill: a new one, or one the connection has finished with. */
  take(): Promise<Buffer>;
  /** Writes the first `length` bytes; `reuse` false for a buffer not of the pool. */
  send(slice: Buffer, length: number, reuse?: boolean): void;
  gone(): boolean;
}

function createSliceWriter(res: Res): SliceWriter {
  const free: Buffer[] = [];
  let made = 0;
  let waiting: (() => void) | undefined;
  let closed = false;
  const wake = (): void => {
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  res.once("close", () => {
    closed = true;
    wake();
  });
  return {
    async take() {
      while (free.length === 0 && made >= SLICES_IN_FLIGHT && !closed) await new Promise<void>((r) => (waiting = r));
      if (free.length > 0) return free.pop()!;
      made++;
      return Buffer.allocUnsafe(SLICE_BYTES);
    },
    send(slice, length, reuse = true) {
      // The callback comes once the connection is done with the bytes (or has failed).
      (res as ServerResponse).write(slice.subarray(0, length), () => {
        if (reuse) free.push(slice);
        wake();
      });
    },
    gone: () => closed || res.destroyed,
  };
}
