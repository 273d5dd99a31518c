import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { isTransient } from "./retry.js";

// One active instance per role (auctioneer, converger): the holder refreshes a key in a bucket
// whose entries expire; a standby takes the key over with a create once it has expired.

export interface LeaderLockOptions {
  bucket: KV;
  name: string;
  holderId: string;
  /** Must be below the bucket's TTL; a third of it is a good choice. */
  refreshMs: number;
  /** The bucket's TTL (default 3 × refreshMs): a leader that cannot refresh steps down before it. */
  ttlMs?: number;
  logger?: Logger;
  onChange(isLeader: boolean): void;
}

export interface LeaderLock {
  isLeader(): boolean;
  stop(): Promise<void>;
}

export function createLeaderLock(opts: LeaderLockOptions): LeaderLock {
  let revision = 0;
  let leader = false;
  let stopped = false;
  const value = new TextEncoder().encode(opts.holderId);

  const setLeader = (next: boolean): void => {
    if (next === leader) return;
    leader = next;
    opts.logger?.info({ lock: opts.name, leader }, next ? "became leader" : "lost leadership");
    opts.onChange(next);
  };

  const ttlMs = opts.ttlMs ?? opts.refreshMs * 3;
  let lastRefresh = 0;

  /** Our own create may have gone through with its reply lost: then the key holds our id. */
  const adoptOwn = async (): Promise<boolean> => {
    const e = await opts.bucket.get(opts.name).catch(() => null);
    if (!e || e.operation !== "PUT" || e.string() !== opts.holderId) return false;
    revision = e.revision;
    lastRefresh = e.created.getTime();
    return Date.now() - lastRefresh < ttlMs - opts.refreshMs;
  };

  const tick = async (): Promise<void> => {
    try {
      revision = leader ? await opts.bucket.update(opts.name, value, revision) : await opts.bucket.create(opts.name, value);
      lastRefresh = Date.now();
      setLeader(true);
    } catch (err) {
      // A NATS fault (an outage, an election) is not a loss: the lock is ours until it expires,
      // so a leader keeps going until the TTL since its last refresh runs low.
      if (leader && isTransient(err) && Date.now() - lastRefresh < ttlMs - opts.refreshMs) return;
      if (await adoptOwn()) return setLeader(true);
      // Someone else holds it (or NATS is unreachable): standing by is the safe choice.
      setLeader(false);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const loop = async (): Promise<void> => {
    await tick();
    if (!stopped) timer = setTimeout(() => void loop(), opts.refreshMs);
  };
  void loop();

  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (leader) {
        // Hand over at once rather than making a standby wait for the TTL.
        await opts.bucket.delete(opts.name, { previousSeq: revision }).catch(() => undefined);
        setLeader(false);
      }
    },
  };
}
