import pino, { type Logger } from "pino";

// The access log is a line per request on the proxy's hot path. Written as each request ends,
// every line cost a write(2) of its own (pino's file destination is synchronous). Here the
// lines of one event-loop turn are collected and handed to the destination in one write, at the
// end of that turn (setImmediate) or when 64 KiB are waiting: the same lines, in order, a
// syscall per turn instead of per request, and at most one turn's lines in memory.

const FLUSH_BYTES = 64 * 1024;

interface LineDestination {
  write(chunk: string): unknown;
}

export interface AccessLogger {
  logger: Logger;
  /** Writes what is waiting (on stop). */
  flush(): void;
}

/** A file descriptor's destination (pino.destination, a SonicBoom) takes several lines at once. */
const takesBatches = (dest: unknown): dest is LineDestination =>
  typeof dest === "object" && dest !== null && typeof (dest as { flushSync?: unknown }).flushSync === "function" && typeof (dest as { write?: unknown }).write === "function";

/**
 * A child of `logger` (same level, fields and format) whose lines go out batched. Destinations
 * that format line by line (the text format, test sinks) get each line as before.
 */
export function createAccessLogger(logger: Logger): AccessLogger {
  const child = logger.child({});
  const dest: unknown = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!takesBatches(dest)) return { logger: child, flush: () => undefined };
  let pending = "";
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === "") return;
    const out = pending;
    pending = "";
    dest.write(out);
  };
  const batching: LineDestination = {
    write(line: string) {
      pending += line;
      if (pending.length >= FLUSH_BYTES) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
  // pino writes through the logger's stream symbol; an own property on the child redirects only it.
  (child as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = batching;
  return { logger: child, flush };
}
