import pino, { type Logger } from "pino";

// The access log is a line per request on the proxy's hot path. Written as each request ended,
// every line cost a write(2) of its own (pino's file destination is synchronous), and a busy
// router spent a tenth of its time there. Here lines wait in memory and go to the destination
// in one write when 32 KiB are waiting or 100 ms after the first of them, and at once on flush
// (the router's stop) and when the process exits: the same lines in the same order, a write
// per few hundred requests, and a crash loses at most the last 100 ms of lines.

const FLUSH_BYTES = 32 * 1024;
const FLUSH_AFTER_MS = 100;

interface LineDestination {
  write(chunk: string): unknown;
}

export interface AccessLogger {
  logger: Logger;
  /** Writes what is waiting. */
  flush(): void;
  /** Writes what is waiting; later lines (requests still ending) are written as they come. */
  close(): void;
}

/** A file descriptor's destination (pino.destination, a SonicBoom) takes several lines at once. */
const takesBatches = (dest: unknown): dest is LineDestination =>
  typeof dest === "object" && dest !== null && typeof (dest as { flushSync?: unknown }).flushSync === "function" && typeof (dest as { write?: unknown }).write === "function";

/**
 * A child of `logger` (same level, fields and format) whose lines go out batched. Destinations
 * that format line by line (the text format, test sinks) get each line as it comes.
 */
export function createAccessLogger(logger: Logger): AccessLogger {
  const child = logger.child({});
  const dest: unknown = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!takesBatches(dest)) return { logger: child, flush: () => undefined, close: () => undefined };
  let pending = "";
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const out = pending;
    pending = "";
    dest.write(out);
  };
  process.on("exit", flush);
  const batching: LineDestination = {
    write(line: string) {
      pending += line;
      if (closed || pending.length >= FLUSH_BYTES) flush();
      else timer ??= setTimeout(flush, FLUSH_AFTER_MS).unref();
    },
  };
  // pino writes through the logger's stream symbol; an own property on the child redirects only it.
  (child as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = batching;
  const close = (): void => {
    closed = true;
    flush();
    process.off("exit", flush);
  };
  return { logger: child, flush, close };
}
