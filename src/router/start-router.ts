import type { AddressInfo } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import pino, { type Logger } from "pino";
import { connectNats, openLrpBuckets, type NatsAuth } from "../nats/index.js";
import { startLrpWatch } from "../store/index.js";
import { Balancer } from "./balancer.js";
import { RouterListenError } from "./errors.js";
import { createProxy } from "./proxy.js";
import { startRegistrar, type Registrar } from "./registrar.js";
import { feedRouteTable } from "./route-feed.js";
import { RouteTable } from "./route-table.js";
import { ROUTER_DEFAULTS as D } from "./settings.js";

// `diego router`: a stateless process. Its table comes from the LRP buckets' watch; it keeps
// nothing else, so any number can run behind a load balancer.

export interface RouterOptions {
  natsUrl?: string;
  natsAuth?: NatsAuth;
  /** A connection owned by the caller. */
  nc?: NatsConnection;
  natsWaitMs?: number;
  replicas?: number;
  host?: string;
  port?: number;
  logger?: Logger;
  /** Publish router.register / router.unregister. */
  register?: boolean;
  registerIntervalMs?: number;
  accessLog?: boolean;
  /** Listen on a free port when `port` is taken (`up` with the default address). */
  freePortIfTaken?: boolean;
}

export interface Router {
  /** host:port it listens on. */
  address: string;
  port: number;
  table: RouteTable;
  stop(): Promise<void>;
}

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const logger = opts.logger ?? pino({ level: "silent" });
  const owns = !opts.nc;
  if (!opts.nc && !opts.natsUrl) throw new RouterListenError("startRouter needs natsUrl or nc");
  const nc = opts.nc ?? (await connectNats({ url: opts.natsUrl!, name: "diego-router", logger, auth: opts.natsAuth, waitMs: opts.natsWaitMs }));
  const table = new RouteTable();
  const watch = await startLrpWatch(await openLrpBuckets(nc, { replicas: opts.replicas, logger }), { nc, logger });
  let registrar: Registrar | undefined;
  const stopFeed = await feedRouteTable(watch, table, (c) => registrar?.publish(c));
  if (opts.register ?? D.routerRegister === "on") {
    registrar = startRegistrar({ nc, all: () => table.registrations(), intervalMs: opts.registerIntervalMs ?? D.routerRegisterInterval, logger });
  }
  const proxy = createProxy({ lookup: (h) => table.lookup(h), balancer: new Balancer(), logger, accessLog: opts.accessLog ?? D.routerAccessLog === "on" });
  const host = opts.host ?? "127.0.0.1";
  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(port, host, () => {
        proxy.server.off("error", reject);
        resolve();
      });
    });
  try {
    await listen(opts.port ?? 8080).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EADDRINUSE" || !opts.freePortIfTaken) throw err;
      logger.warn({ port: opts.port ?? 8080 }, "router port taken; listening on a free one");
      return listen(0);
    });
  } catch (err) {
    registrar?.stop();
    stopFeed();
    watch.stop();
    if (owns) await nc.close();
    throw new RouterListenError(`router cannot listen on ${host}:${opts.port ?? 8080}: ${(err as Error).message}`);
  }
  const port = (proxy.server.address() as AddressInfo).port;
  const address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  logger.info({ address, register: registrar !== undefined }, "router listening");
  return {
    address,
    port,
    table,
    async stop() {
      registrar?.stop();
      stopFeed();
      watch.stop();
      const closed = new Promise<void>((r) => proxy.server.close(() => r()));
      proxy.server.closeAllConnections();
      proxy.close();
      await closed;
      if (owns) await nc.drain().catch(() => undefined);
    },
  };
}
