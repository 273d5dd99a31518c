import { closeSync, constants, openSync, readSync } from "node:fs";
import type { Logger } from "pino";
import { seekEnd } from "../libc/index.js";

// `log: true` rules write the first packet of each new connection to the kernel log (nft `log
// prefix`). The cell reads /dev/kmsg, picks its own lines by their prefix and hands each to the
// container it names, which writes it to the task's log stream.

const POLL_MS = 200;

export interface KernelLogWatch {
  /** Calls `fn` with each logged packet of container `id` (the text after the prefix). */
  follow(id: string, fn: (line: string) => void): () => void;
  stop(): void;
}

/** Lines look like `<tag> <container id> rule <n>: IN=... SRC=... DST=...`. */
export function watchKernelLog(tag: string, logger: Logger): KernelLogWatch {
  const followers = new Map<string, (line: string) => void>();
  const buf = Buffer.alloc(8192);
  let fd: number | undefined;
  let timer: NodeJS.Timeout | undefined;

  const open = (): void => {
    try {
      fd = openSync("/dev/kmsg", constants.O_RDONLY | constants.O_NONBLOCK);
      seekEnd(fd); // only records from now on
    } catch (err) {
      logger.warn({ err }, "cannot read the kernel log: log: true rules log to it without reaching task logs");
      fd = -1;
    }
  };

  const drain = (): void => {
    if (fd === undefined || fd < 0) return;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EPIPE") continue; // records were overwritten before we read them
        if (code !== "EAGAIN") logger.warn({ err }, "reading the kernel log failed");
        return;
      }
      // One record per read: "priority,sequence,timestamp,flags;message\n".
      const record = buf.toString("utf8", 0, n);
      const message = record.slice(record.indexOf(";") + 1).split("\n")[0]!;
      if (!message.startsWith(`${tag} `)) continue;
      const rest = message.slice(tag.length + 1);
      const space = rest.indexOf(" ");
      followers.get(rest.slice(0, space))?.(rest.slice(space + 1).trim());
    }
  };

  return {
    follow(id, fn) {
      if (fd === undefined) open();
      followers.set(id, fn);
      timer ??= setInterval(drain, POLL_MS).unref();
      return () => {
        // A last read, so the packets of the task's final moments are not lost.
        drain();
        followers.delete(id);
      };
    },
    stop() {
      if (timer) clearInterval(timer);
      if (fd !== undefined && fd >= 0) closeSync(fd);
    },
  };
}
