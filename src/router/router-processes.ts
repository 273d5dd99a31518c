import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import { RouterProcessError } from "./errors.js";

// `diego router --router-processes N`: N router processes behind one listening address, with
// node's cluster module. A router keeps nothing but its view of the LRP buckets, so each process
// is a whole router (its own NATS connection, watch, table and access log) and they need not
// talk. The first process only supervises: it forks the routers, hands each accepted client
// connection to the next one in turn (round robin: keep-alive clients stay on the process that
// got them, so the spread follows connections, which balances better than leaving accept to
// whichever process the kernel wakes), and starts a router again if one dies.

const READY = "diego-router-ready";

interface ReadyMessage {
  kind: typeof READY;
  address: string;
}

const isReady = (m: unknown): m is ReadyMessage => typeof m === "object" && m !== null && (m as ReadyMessage).kind === READY;

/** In a forked router: whether this process is one (it then runs a single router and reports). */
export const isRouterWorker = (): boolean => cluster.isWorker;

const INDEX_ENV = "DIEGO_ROUTER_PROCESS";

/**
 * Whether this router process publishes route registrations: with several, only the first
 * (registration is idempotent, so N copies would only multiply NATS traffic; a restarted first
 * one registers everything again as it starts).
 */
export const registersRoutes = (): boolean => !cluster.isWorker || process.env[INDEX_ENV] === "0";

/** A forked router tells the supervisor it listens, and ends when the supervisor is gone. */
export function reportReady(address: string): void {
  process.send?.({ kind: READY, address } satisfies ReadyMessage);
  // The IPC channel closes when the supervisor dies, SIGKILL included: connections came only
  // through it, so the router stops as a SIGTERM would stop it instead of lingering.
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}

export interface RouterProcesses {
  address: string;
  stop(): Promise<void>;
}

const RESTART_DELAY_MS = 1_000;

/** Forks `count` routers (this program again, same arguments) and resolves once all listen. */
export async function startRouterProcesses(count: number, logger: Logger): Promise<RouterProcesses> {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  // A router's stdout would repeat the ready line; its logs go where the supervisor's go.
  cluster.setupPrimary({ stdio: ["ignore", "ignore", "inherit", "ipc"] });
  let stopping = false;
  const workers = new Set<Worker>();

  const fork = (index: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ [INDEX_ENV]: String(index) });
      workers.add(w);
      let ready = false;
      w.on("message", (m: unknown) => {
        if (!isReady(m)) return;
        ready = true;
        resolve(m.address);
      });
      w.once("exit", (code, signal) => {
        workers.delete(w);
        if (!ready) return reject(new RouterProcessError(`router process ${index} exited before listening (${signal ?? `code ${code}`})`));
        if (stopping) return;
        logger.error({ index, code, signal }, "router process died; starting it again");
        setTimeout(() => {
          if (!stopping) fork(index).catch((err: Error) => logger.error({ index, err }, "router process did not start again"));
        }, RESTART_DELAY_MS).unref();
      });
    });

  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      [...workers].map((w) =>
        w.isDead() ? undefined : new Promise<void>((r) => {
          w.once("exit", () => r());
          w.process.kill("SIGTERM");
        }),
      ),
    );
  };

  try {
    const addresses = await Promise.all(Array.from({ length: count }, (_, i) => fork(i)));
    logger.info({ address: addresses[0], processes: count }, "router processes listening");
    return { address: addresses[0]!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
