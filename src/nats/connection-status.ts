import type { NatsConnection, Status } from "@nats-io/transport-node";

// nats.js reports disconnects and reconnects on an async iterator typed without its stop();
// this calls back on each status and returns the way to stop listening.

export function onNatsStatus(nc: NatsConnection, callback: (status: Status) => void): () => void {
  const statuses = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  void (async () => {
    for await (const s of statuses) callback(s);
  })();
  return () => statuses.stop?.();
}
