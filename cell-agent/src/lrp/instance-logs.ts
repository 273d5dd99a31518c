import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { createLogStreamer, type LogStreamer } from "../logs/index.js";

/**
 * The task log streamer with the instance index on every source name: `APP/0`, `HEALTH/2`,
 * as 2015 users saw `[APP/0]`. Names come from the actions' log_source (CF used APP and HEALTH),
 * else the LRP's log_source, else LOG. defaultSource stays the bare name, so the executor's
 * inheritance of names is unchanged.
 */
export function createInstanceLogStreamer(opts: {
  nc: NatsConnection;
  logGuid: string;
  logSource: string;
  index: number;
  logger: Logger;
}): LogStreamer {
  const inner = createLogStreamer({ nc: opts.nc, logGuid: opts.logGuid, taskGuid: "", defaultSource: opts.logSource, logger: opts.logger });
  return {
    defaultSource: inner.defaultSource,
    source: (name) => inner.source(`${name || inner.defaultSource}/${opts.index}`),
    flush: () => inner.flush(),
  };
}
