import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, openTasksBucket } from "../../src/nats/index.js";
import { createTaskStore, transitions, type Outcome, type StoredTask, type TaskStore } from "../../src/store/index.js";

// The task store on its own NATS connection: what a cell, auctioneer or converger uses. Tests use
// it to play those roles (claim, start, complete) against the real bucket.

export interface StoreClient {
  readonly nc: NatsConnection;
  readonly store: TaskStore;
  /** PENDING -> CLAIMED -> RUNNING on `cellId`. */
  run(guid: string, cellId: string): Promise<StoredTask>;
  /** PENDING -> ... -> COMPLETED on `cellId` with this outcome. */
  finish(guid: string, cellId: string, outcome: Outcome): Promise<StoredTask>;
  close(): Promise<void>;
}

export async function connectStore(natsUrl: string, name = "test-store"): Promise<StoreClient> {
  const nc = await connectNats({ url: natsUrl, name });
  await openTasksBucket(nc); // creates the bucket on first use
  const store = createTaskStore(nc);
  const run = async (guid: string, cellId: string): Promise<StoredTask> => {
    await store.apply(guid, transitions.claim(cellId, `${cellId}-session`));
    return (await store.apply(guid, transitions.start(cellId))).after;
  };
  return {
    nc,
    store,
    run,
    async finish(guid, cellId, outcome) {
      await run(guid, cellId);
      return (await store.apply(guid, transitions.complete(cellId, outcome))).after;
    },
    close: () => nc.drain(),
  };
}
