import { fromBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { ActualLRPSchema, ActualLrpState } from "../gen/diego/v1/lrp_pb.js";
import { restartAt, type CrashPolicy } from "../model/index.js";
import { ACTUAL_LRPS_BUCKET } from "../nats/index.js";
import { nowNanos } from "../store/index.js";

// A crashed instance's backoff should end in a restart then, not at the next interval (up to
// 30 s later). So the converger keeps one timer for the soonest moment something is due, fed by
// each pass (nextDueAt) and by the crashes themselves: every write to the actual-LRP bucket is
// also a plain NATS message on `$KV.<bucket>.<key>`, and a CRASHED one names its restart time.
// Both are hints: a lost message only means the interval's pass does the restart.

export interface DueTimer {
  /** Runs onDue at `ns` (ns since the epoch) unless something sooner is already due. */
  at(ns: bigint): void;
  stop(): void;
}

/** setTimeout's longest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function createDueTimer(onDue: () => void): DueTimer {
  let due: bigint | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  return {
    at(ns) {
      if (stopped || (due !== undefined && due <= ns)) return;
      due = ns;
      clearTimeout(timer);
      const delayMs = Number((ns - nowNanos()) / 1_000_000n) + 1;
      timer = setTimeout(() => {
        due = undefined;
        timer = undefined;
        onDue();
      }, Math.min(MAX_DELAY_MS, Math.max(0, delayMs)));
      timer.unref();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Calls onCrashed with the restart time of every CRASHED instance written from now on. */
export function watchCrashes(nc: NatsConnection, policy: () => CrashPolicy, onCrashed: (restartAtNs: bigint) => void): { stop(): void } {
  const sub = nc.subscribe(`$KV.${ACTUAL_LRPS_BUCKET}.>`, {
    callback: (err, msg) => {
      if (err || msg.data.length === 0) return; // a delete or purge
      try {
        const a = fromBinary(ActualLRPSchema, msg.data);
        if (a.state !== ActualLrpState.CRASHED || a.evacuating) return;
        const t = restartAt(a.since, a.crashCount, policy());
        if (t !== undefined) onCrashed(t);
      } catch {
        // Not a record (a foreign write): the pass judges the bucket itself.
      }
    },
  });
  return { stop: () => sub.unsubscribe() };
}
