import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import { CellPresenceSchema, type CellPresence } from "../gen/diego/v1/cell_pb.js";
import { nowNanos } from "./clock.js";

// Cell presences, one KV entry per cell, refreshed by each cell's heartbeat. A cell whose last
// heartbeat is older than the TTL is gone (the bucket also expires the entry on its own).

export interface CellRegistry {
  /** Writes this cell's heartbeat. */
  announce(presence: CellPresence): Promise<void>;
  /** Removes a cell at once (graceful shutdown). */
  withdraw(cellId: string): Promise<void>;
  /** Live cells, from a watch-fed view (no round trip). */
  list(): CellPresence[];
  get(cellId: string): CellPresence | undefined;
  ready(): Promise<void>;
  stop(): void;
}

export async function createCellRegistry(kv: KV, ttlMs: number): Promise<CellRegistry> {
  const cells = new Map<string, CellPresence>();
  const ttlNanos = BigInt(ttlMs) * 1_000_000n;
  const alive = (p: CellPresence): boolean => nowNanos() - p.heartbeatAt < ttlNanos;

  const status = await kv.status();
  const watch = await kv.watch();
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  if (status.values === 0) markReady();
  void (async () => {
    for await (const e of watch) {
      if (e.operation === "PUT" && e.length > 0) {
        try {
          cells.set(e.key, fromBinary(CellPresenceSchema, e.value));
        } catch {
          cells.delete(e.key);
        }
      } else {
        cells.delete(e.key);
      }
      if (e.isUpdate) markReady();
    }
  })();

  return {
    async announce(presence) {
      await kv.put(presence.cellId, toBinary(CellPresenceSchema, presence));
      cells.set(presence.cellId, presence);
    },
    async withdraw(cellId) {
      await kv.delete(cellId);
      cells.delete(cellId);
    },
    list: () => [...cells.values()].filter(alive),
    get(cellId) {
      const p = cells.get(cellId);
      return p && alive(p) ? p : undefined;
    },
    ready: () => ready,
    stop: () => watch.stop(),
  };
}
