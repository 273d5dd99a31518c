import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { messagesFor, registryMessage, type RegistryMessage } from "./registry-message.js";
import type { Registration, TableChange } from "./route-table.js";

// Keeps an existing gorouter on the same NATS told about every route, as the 2015
// route-emitter did (reference 9.2): each change is published at once on router.register /
// router.unregister, and everything is re-registered periodically, every
// pruneThresholdInSeconds / 3 from a gorouter's greeting (40 s by default, gorouter's 120 s
// prune threshold), and at once when a gorouter announces itself on router.start.

export const REGISTER = "router.register";
export const UNREGISTER = "router.unregister";
const GREET = "router.greet";
const START = "router.start";

export interface RegistrarOptions {
  nc: NatsConnection;
  /** Everything registered now (the table's registrations). */
  all(): Registration[];
  /** Used until a gorouter tells its prune threshold. */
  intervalMs: number;
  logger: Logger;
}

export interface Registrar {
  publish(change: TableChange): void;
  stop(): void;
}

/** The re-registration interval a gorouter's greeting or router.start asks for, if it names one. */
export function intervalFromGreeting(data: Uint8Array): number | undefined {
  try {
    const g = JSON.parse(new TextDecoder().decode(data)) as { pruneThresholdInSeconds?: unknown };
    const s = g.pruneThresholdInSeconds;
    return typeof s === "number" && s > 0 ? Math.max(1000, Math.floor((s * 1000) / 3)) : undefined;
  } catch {
    return undefined;
  }
}

export function startRegistrar(opts: RegistrarOptions): Registrar {
  const { nc, logger } = opts;
  let intervalMs = opts.intervalMs;
  let stopped = false;
  const send = (subject: string, m: RegistryMessage): void => {
    try {
      nc.publish(subject, JSON.stringify(m));
    } catch (err) {
      logger.warn({ err: (err as Error).message, subject }, "route registration not published");
    }
  };
  const emitAll = (): void => {
    for (const r of opts.all()) send(REGISTER, registryMessage(r));
  };
  let timer: NodeJS.Timeout | undefined;
  const restartTimer = (): void => {
    clearInterval(timer);
    if (!stopped) timer = setInterval(emitAll, intervalMs);
  };
  const adopt = (data: Uint8Array): void => {
    const ms = intervalFromGreeting(data);
    if (ms !== undefined) intervalMs = ms;
    restartTimer();
    emitAll();
  };

  const starts: Subscription = nc.subscribe(START, { callback: (err, msg) => void (!err && adopt(msg.data)) });
  // Ask any gorouter for its intervals, every second until one answers (none may ever run).
  let greetTimer: NodeJS.Timeout | undefined;
  const greet = (): void => {
    nc.request(GREET, "", { timeout: 1000 }).then(
      (msg) => !stopped && adopt(msg.data),
      () => {
        if (!stopped) greetTimer = setTimeout(greet, 1000);
      },
    );
  };
  greet();
  restartTimer();
  emitAll();

  return {
    publish(change) {
      const m = messagesFor(change);
      for (const u of m.unregister) send(UNREGISTER, u);
      for (const r of m.register) send(REGISTER, r);
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(greetTimer);
      starts.unsubscribe();
    },
  };
}
