import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { CellPresenceSchema, type CellPresence } from "../gen/diego/v1/cell_pb.js";
import { nowNanos } from "./clock.js";
import { startResilientWatch } from "./kv-watch.js";

// Cell presences, one KV entry per cell, refreshed by each cell's heartbeat. A cell whose last
// heartbeat is older than the TTL is gone (the bucket also expires the entry on its own).
//
// A view is only as good as its watch: after a NATS outage, or while the watch is stalled, every
// heartbeat in it looks old. `trusted()` says whether the view has been current for a whole TTL,
// long enough for every live cell to have beaten into it; nobody may call a cell gone (or see
// "no cells") before that.

export interface CellRegistry {
  /** Writes this cell's heartbeat. */
  announce(presence: CellPresence): Promise<void>;
  /** Removes a cell at once (graceful shutdown). */
  withdraw(cellId: string): Promise<void>;
  /** Live cells, from a watch-fed view (no round trip). */
  list(): CellPresence[];
  get(cellId: string): CellPresence | undefined;
  /** The view has been connected and current for at least a cell TTL. */
  trusted(): boolean;
  /**
   * Whether the cell beat, with this session, within a TTL of the moment the view was last
   * known complete: a process that lags (starved of CPU, behind on its watch) sees every
   * heartbeat as older than it is, and must not call cells gone for its own delay.
   */
  liveInView(cellId: string, sessionId: string): boolean;
  /** The cells live by liveInView. */
  listInView(): CellPresence[];
  /**
   * Reads the cell's presence from the bucket itself: true only if it is absent, of another
   * session, or older than the TTL. A failed read is not proof: false. Without a session (an
   * LRP record names only its cell), any fresh presence of the cell counts as alive.
   */
  confirmGone(cellId: string, sessionId?: string): Promise<boolean>;
  ready(): Promise<void>;
  stop(): void;
}

export interface CellRegistryOptions {
  nc?: NatsConnection;
  logger?: Logger;
  /** How often the watch is checked against the stream (default 1 s, at most ttl/2). */
  checkMs?: number;
}

export async function createCellRegistry(kv: KV, ttlMs: number, opts: CellRegistryOptions = {}): Promise<CellRegistry> {
  const cells = new Map<string, CellPresence>();
  const ttlNanos = BigInt(ttlMs) * 1_000_000n;
  const alive = (p: CellPresence): boolean => nowNanos() - p.heartbeatAt < ttlNanos;
  const aliveInView = (p: CellPresence): boolean => BigInt(watch.currentAsOf()) * 1_000_000n - p.heartbeatAt < ttlNanos;

  const status = await kv.status();
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  if (status.values === 0) markReady();
  const watch = startResilientWatch({
    kv,
    nc: opts.nc,
    logger: opts.logger,
    name: "cells",
    checkMs: opts.checkMs ?? Math.max(50, Math.min(1_000, Math.floor(ttlMs / 2))),
    onEntry(e) {
      if (e.operation === "PUT" && e.length > 0) {
        try {
          const p = fromBinary(CellPresenceSchema, e.value);
          const known = cells.get(e.key);
          // A recreated watch may repeat an older beat.
          if (!known || known.heartbeatAt <= p.heartbeatAt || known.sessionId !== p.sessionId) cells.set(e.key, p);
        } catch {
          cells.delete(e.key);
        }
      } else {
        cells.delete(e.key);
      }
      if (e.isUpdate) markReady();
    },
  });

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
    liveInView(cellId, sessionId) {
      const p = cells.get(cellId);
      return !!p && p.sessionId === sessionId && aliveInView(p);
    },
    listInView: () => [...cells.values()].filter(aliveInView),
    trusted() {
      const since = watch.currentSince();
      return since !== undefined && Date.now() - since >= ttlMs;
    },
    async confirmGone(cellId, sessionId) {
      try {
        const asked = Date.now();
        const e = await kv.get(cellId);
        // A slow answer comes from a server that was stalled: heartbeats queued behind this read
        // may not have landed yet, so it proves nothing.
        if (Date.now() - asked > Math.min(1_000, ttlMs / 4)) return false;
        if (!e || e.operation !== "PUT" || e.length === 0) return true;
        const p = fromBinary(CellPresenceSchema, e.value);
        return (sessionId !== undefined && p.sessionId !== sessionId) || !alive(p);
      } catch {
        return false;
      }
    },
    ready: () => ready,
    stop: () => watch.stop(),
  };
}
