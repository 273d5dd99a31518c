import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";

// One active instance per role (auctioneer, converger): the holder refreshes a key in a bucket
// whose entries expire; a standby takes the key over with a create once it has expired.

export interface LeaderLockOptions {
  bucket: KV;
  name: string;
  holderId: string;
  /** Must be below the bucket's TTL; a third of it is a good choice. */
  refreshMs: number;
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

  const tick = async (): Promise<void> => {
    try {
      revision = leader ? await opts.bucket.update(opts.name, value, revision) : await opts.bucket.create(opts.name, value);
      setLeader(true);
    } catch {
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
