import type { ServerResponse } from "node:http";
import type { Res } from "../http/types.js";

// Lists of documents already encoded (each task's JSON is kept in the index), streamed.

/** Documents already encoded, as a list writes them: first their lengths, then their bytes. */
export interface EncodedParts {
  readonly count: number;
  length(i: number): number;
  /** Copies part `i` into `target` at `at` (which has room); returns its length. */
  copyTo(i: number, target: Buffer, at: number): number;
}

export const bufferParts = (parts: Buffer[]): EncodedParts => ({
  count: parts.length,
  length: (i) => parts[i]!.length,
  copyTo: (i, target, at) => parts[i]!.copy(target, at),
});

/**
 * A list is written through a few buffers of this size, each reused once the connection has
 * taken it. (A 100,000-task list is 60 MB: in fresh buffers, faulting in new pages cost more
 * than copying, and the process kept the memory.)
 */
const SLICE_BYTES = 64 * 1024;
const SLICES_IN_FLIGHT = 4;
const [OPEN, COMMA, CLOSE] = [0x5b, 0x2c, 0x5d];

/** 200 with a JSON array of documents already encoded, written as the client takes it. */
export async function sendJsonArray(res: Res, parts: EncodedParts): Promise<void> {
  let size = 2 + Math.max(0, parts.count - 1);
  for (let i = 0; i < parts.count; i++) size += parts.length(i);
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(size) });
  const out = createSliceWriter(res);
  let slice = await out.take();
  let at = 0;
  const flush = async (): Promise<boolean> => {
    out.send(slice, at);
    slice = await out.take();
    at = 0;
    return !out.gone();
  };
  slice[at++] = OPEN;
  for (let i = 0; i < parts.count; i++) {
    const length = parts.length(i);
    if (i > 0) {
      if (at === slice.length && !(await flush())) return;
      slice[at++] = COMMA;
    }
    if (at + length > slice.length) {
      if (!(await flush())) return;
      if (length > slice.length) {
        // A document larger than a slice goes in a buffer of its own.
        const own = Buffer.allocUnsafe(length);
        parts.copyTo(i, own, 0);
        out.send(own, length, false);
        continue;
      }
    }
    at += parts.copyTo(i, slice, at);
  }
  if (at === slice.length && !(await flush())) return;
  slice[at++] = CLOSE;
  out.end(slice, at);
}

interface SliceWriter {
  /** A slice free to fill: a new one, or one the connection has finished with. */
  take(): Promise<Buffer>;
  /** Writes the first `length` bytes of a slice; `reuse` false for a buffer not of the pool. */
  send(slice: Buffer, length: number, reuse?: boolean): void;
  end(slice: Buffer, length: number): void;
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
    end(slice, length) {
      res.end(slice.subarray(0, length));
    },
    gone: () => closed || res.destroyed,
  };
}
