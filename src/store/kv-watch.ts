import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { backoffMs, onNatsStatus } from "../nats/index.js";

// A KV watch that outlives faults, and knows whether its view is current.
//
// nats.js's watch is an ordered push consumer on one server. When that server dies (a cluster
// node lost) or JetStream forgets the consumer (a restart), the watch notices only after two
// missed idle heartbeats, 10 s at first and a minute after its first reset, and it gives up
// altogether when it cannot recreate the consumer 30 times in a row. Meanwhile the view is
// stale and nobody knows.
//
// So every `checkMs` this asks the bucket's stream for its last sequence. The view is current
// when the watch has delivered up to it; behind and making no progress over two checks, the
// watch is stalled and is recreated from the revision after the last one seen. A watch that
// ends is recreated the same way.

export interface ResilientWatchOptions {
  kv: KV;
  /** Its disconnects end "current" at once; without it only the checks do. */
  nc?: NatsConnection;
  /** Each entry, in order; a recreated watch may repeat some (compare revisions). */
  onEntry(e: KvWatchEntry): void;
  checkMs?: number;
  logger?: Logger;
  /** Names the watch in log lines. */
  name: string;
}

export interface ResilientWatch {
  /**
   * Since when (ms since the epoch) the view has been current without a break: connected, and
   * the watch caught up with the stream at a check. Undefined while it is not.
   */
  currentSince(): number | undefined;
  /** The highest revision delivered. */
  lastRevision(): number;
  /** When a check last found the view caught up (ms since the epoch; 0: never). */
  currentAsOf(): number;
  stop(): void;
}

const DEFAULT_CHECK_MS = 1_000;

export function startResilientWatch(opts: ResilientWatchOptions): ResilientWatch {
  const checkMs = opts.checkMs ?? DEFAULT_CHECK_MS;
  let lastRevision = 0;
  let progressAt = Date.now();
  let currentSince: number | undefined;
  let stopped = false;
  let watch: { stop(): void } | undefined;
  let behindSince: number | undefined;
  let connected = true;

  const run = async (): Promise<void> => {
    for (let failures = 0; !stopped; ) {
      try {
        const w = await withTimeout(opts.kv.watch(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {}), 15_000, "watch create");
        if (stopped) return w.stop();
        watch = w;
        failures = 0;
        void check();
        for await (const e of w) {
          progressAt = Date.now();
          if (e.revision > lastRevision) lastRevision = e.revision;
          opts.onEntry(e);
          // Checks that found the view behind: it was complete as of each once it got there.
          while (probes.length > 0 && probes[0]!.seq <= lastRevision) confirmCurrent(probes.shift()!.at);
          // Not current yet (a start, a recreated watch): find out soon, not a whole check later.
          if (currentSince === undefined && progressAt - checkedAt >= 100) void check();
        }
      } catch (err) {
        if (failures++ % 10 === 0) opts.logger?.warn({ watch: opts.name, err: (err as Error).message }, "watch failed; recreating it");
      }
      watch = undefined;
      if (stopped) return;
      currentSince = undefined;
      await new Promise((r) => setTimeout(r, backoffMs(failures, 100, 2_000)));
    }
  };
  void run();

  const recreate = (why: string): void => {
    opts.logger?.warn({ watch: opts.name, revision: lastRevision }, `watch ${why}; recreating it`);
    currentSince = undefined;
    behindSince = undefined;
    probes.length = 0;
    // Its loop sees the end and starts a new one from the next revision.
    watch?.stop();
  };

  let checking = false;
  let checkedAt = 0;
  /** When a check last found the view current; a frozen server stops those at once. */
  let lastCurrentAt = 0;
  const probes: Array<{ at: number; seq: number }> = [];
  function confirmCurrent(at: number): void {
    if (!connected) return;
    if (at > lastCurrentAt) lastCurrentAt = at;
    currentSince ??= at;
  }
  async function check(): Promise<void> {
    if (checking || stopped) return;
    checking = true;
    const askedAt = Date.now();
    checkedAt = askedAt;
    try {
      if (!connected || !watch) {
        currentSince = undefined;
        return;
      }
      // Bounded here too: one check that never ends would end all checking.
      const status = await withTimeout(opts.kv.status(), Math.max(2_000, 2 * checkMs), "stream info");
      const { streamInfo } = status as unknown as { streamInfo: { state: { last_seq: number; messages: number } } };
      if (!connected) return;
      const { last_seq: lastSeq, messages } = streamInfo.state;
      if (messages === 0 || lastRevision >= lastSeq) {
        confirmCurrent(askedAt);
        probes.length = 0;
        behindSince = undefined;
        return;
      }
      // On a busy bucket the watch is rarely exactly caught up when the answer comes: it is
      // current as of this check once it delivers up to this sequence.
      probes.push({ at: askedAt, seq: lastSeq });
      if (probes.length > 16) probes.shift();
      // Behind: catching up is fine, standing still since the last check is not.
      if (behindSince === undefined || progressAt >= behindSince) behindSince = askedAt;
      else if (askedAt - behindSince >= checkMs) recreate("stalled");
    } catch {
      // JetStream did not answer: nothing shows the view is current.
      currentSince = undefined;
    } finally {
      checking = false;
    }
  }
  const timer = setInterval(() => void check(), checkMs);
  timer.unref();

  const stopStatus = !opts.nc ? () => undefined : onNatsStatus(opts.nc, (s) => {
    if (s.type === "disconnect") {
      connected = false;
      currentSince = undefined;
      probes.length = 0;
    } else if (s.type === "reconnect") {
      connected = true;
      void check();
    }
  });

  return {
    currentSince() {
      // Current only while the checks keep saying so: a server that stopped answering (frozen,
      // partitioned) without a disconnect makes the view not current within two checks.
      if (currentSince !== undefined && Date.now() - lastCurrentAt > 2 * checkMs + 250) currentSince = undefined;
      return currentSince;
    },
    lastRevision: () => lastRevision,
    currentAsOf: () => lastCurrentAt,
    stop() {
      stopped = true;
      clearInterval(timer);
      stopStatus();
      watch?.stop();
    },
  };
}

class WatchTimeoutError extends Error {
  override readonly name = "WatchTimeoutError";
}

/** Rejects if `p` has not settled within `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WatchTimeoutError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
