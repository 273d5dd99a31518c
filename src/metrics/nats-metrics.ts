import type { NatsConnection } from "@nats-io/transport-node";
import { natsReconnects } from "./metrics.js";

/** Counts a connection's reconnects until it closes. */
export function countReconnects(nc: NatsConnection, name: string): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (nc.isDraining() || nc.isClosed()) continue;
      if (s.type === "reconnect") natsReconnects.inc({ connection: name });
    }
  })();
}
