// Turns a process's raw output chunks into log messages the way Diego's log streamer does:
// a message ends at "\n" or "\r", is never longer than maxBytes (longer lines are cut), and
// empty messages are dropped. Bytes are buffered, so a UTF-8 character split across two
// chunks stays whole.

export const MAX_MESSAGE_BYTES = 4096;

export interface LineSplitter {
  write(chunk: Buffer): void;
  /** Emits a pending partial line (the process ended without a final newline). */
  end(): void;
}

export function createLineSplitter(emit: (message: string) => void, maxBytes = MAX_MESSAGE_BYTES): LineSplitter {
  let pending = Buffer.alloc(0);

  const emitBytes = (bytes: Buffer): void => {
    if (bytes.length > 0) emit(bytes.toString("utf8"));
  };

  // Cuts full-size messages off the front of pending, at a UTF-8 character boundary.
  const drainOversized = (): void => {
    while (pending.length > maxBytes) {
      const cut = utf8Boundary(pending, maxBytes);
      emitBytes(pending.subarray(0, cut));
      pending = pending.subarray(cut);
    }
  };

  return {
    write(chunk) {
      let start = 0;
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i];
        if (byte !== 0x0a && byte !== 0x0d) continue;
        pending = Buffer.concat([pending, chunk.subarray(start, i)]);
        drainOversized();
        emitBytes(pending);
        pending = Buffer.alloc(0);
        start = i + 1;
      }
      if (start < chunk.length) {
        pending = Buffer.concat([pending, chunk.subarray(start)]);
        drainOversized();
      }
    },
    end() {
      emitBytes(pending);
      pending = Buffer.alloc(0);
    },
  };
}

/** The largest cut <= limit that does not split a multi-byte UTF-8 character. */
export function utf8Boundary(bytes: Buffer, limit: number): number {
  if (bytes.length <= limit) return bytes.length;
  let cut = limit;
  // Continuation bytes are 10xxxxxx; back up at most 3 to the character's lead byte.
  while (cut > limit - 3 && cut > 0 && ((bytes[cut] ?? 0) & 0xc0) === 0x80) cut--;
  return cut > 0 ? cut : limit;
}
