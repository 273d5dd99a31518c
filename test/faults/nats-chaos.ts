import type { TestNats } from "../fixtures/nats.js";
import { sleep } from "./fault-support.js";

// nats-server itself dies during a fault test: SIGKILLed a few times, each time down for a while,
// then started again on the same port and data dir (JetStream recovers the buckets from disk).

export interface Outage {
  from: number;
  to: number;
}

export interface NatsChaosOptions {
  random: () => number;
  /** The kills are spread over this window from the start. */
  windowMs: number;
  kills: number;
  minDownMs: number;
  maxDownMs: number;
}

export interface NatsChaos {
  /** Resolves once every kill is done and the server is up again. */
  finished: Promise<void>;
  outages: Outage[];
  /** The server running now (a restart is a new one). */
  current(): TestNats;
  stop(): Promise<void>;
}

export function startNatsChaos(initial: TestNats, opts: NatsChaosOptions): NatsChaos {
  const began = Date.now();
  const outages: Outage[] = [];
  let nats = initial;
  let stopped = false;

  const loop = async (): Promise<void> => {
    for (let i = 0; i < opts.kills && !stopped; i++) {
      const slot = opts.windowMs / opts.kills;
      const at = began + slot * i + slot * (0.2 + 0.5 * opts.random());
      if (at > Date.now()) await sleep(at - Date.now());
      if (stopped) return;
      const down = opts.minDownMs + opts.random() * (opts.maxDownMs - opts.minDownMs);
      const from = Date.now();
      await nats.kill();
      const killedMs = Date.now() - from;
      await sleep(down);
      const restartAt = Date.now();
      nats = await nats.restart();
      outages.push({ from, to: Date.now() });
      if (process.env.CHAOS_LOG_DIR) console.log(`nats-server down ${Date.now() - from} ms (kill ${killedMs} ms, planned ${Math.round(down)} ms, start ${Date.now() - restartAt} ms)`);
    }
  };

  const finished = loop();
  return {
    finished,
    outages,
    current: () => nats,
    async stop() {
      stopped = true;
      await finished.catch(() => undefined);
    },
  };
}

/** Whether [from, to] overlaps an outage, widened by `slackMs` after each. */
export function overlapsOutage(outages: Outage[], from: number, to: number, slackMs: number): boolean {
  return outages.some((o) => from <= o.to + slackMs && to >= o.from);
}
