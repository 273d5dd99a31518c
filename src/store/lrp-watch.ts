import { create, fromBinary } from "@bufbuild/protobuf";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ActualLRPSchema, DesiredLRPResponseSchema, WatchLRPsResponseSchema, type ActualLRP, type DesiredLRPResponse, type WatchLRPsResponse } from "../gen/diego/v1/lrp_pb.js";
import type { LrpBuckets } from "../nats/index.js";
import { startResilientWatch, type ResilientWatch } from "./kv-watch.js";

// A watch-fed view of the LRP buckets that turns each change into 2015's event
// (desired_lrp_created|changed|removed, actual_lrp_created|changed|removed) with the record
// before and after, for /v1/events and the gRPC WatchLRPs. The records present when it starts
// are loaded without events; later changes are events, in each bucket's order (the two buckets
// are two streams; an instance created before its desired record arrived waits for it). A watch that
// is recreated (kv-watch.ts) may deliver an entry again: entries at or below the revision seen
// for their key are dropped.

/** Longest an instance's events wait for its desired record's (see `held` below). */
const HOLD_FOR_DESIRED_MS = 1_000;

export type LrpEventListener = (event: WatchLRPsResponse) => void;

export interface LrpWatch {
  /** Resolves once both buckets' records present at the start are loaded. */
  ready(): Promise<void>;
  desired(): DesiredLRPResponse[];
  /** Instance records and evacuating copies. */
  actuals(): ActualLRP[];
  /** Events from now on; returns the unsubscribe. */
  onEvent(listener: LrpEventListener): () => void;
  stop(): void;
}

export interface LrpWatchOptions {
  nc?: NatsConnection;
  logger?: Logger;
}

interface Held<T> {
  value: T | undefined;
  revision: number;
}

/** The domain an event is about (for a watch of one domain). */
export function lrpEventDomain(e: WatchLRPsResponse): string {
  const e_ = e.event;
  switch (e_.case) {
    case "desiredLrpCreated":
    case "desiredLrpRemoved":
      return e_.value.desiredLrp?.domain ?? "";
    case "desiredLrpChanged":
      return e_.value.desiredLrpAfter?.domain ?? "";
    case "actualLrpCreated":
    case "actualLrpRemoved":
      return e_.value.actualLrp?.domain ?? "";
    case "actualLrpChanged":
      return e_.value.actualLrpAfter?.domain ?? "";
    default:
      return "";
  }
}

export async function startLrpWatch(buckets: LrpBuckets, opts: LrpWatchOptions = {}): Promise<LrpWatch> {
  const listeners = new Set<LrpEventListener>();
  const emit = (event: WatchLRPsResponse): void => {
    for (const l of listeners) l(event);
  };
  const desired = new Map<string, Held<DesiredLRPResponse>>();
  const actuals = new Map<string, Held<ActualLRP>>();

  const follow = async <T>(
    kv: KV,
    name: string,
    cache: Map<string, Held<T>>,
    decode: (b: Uint8Array) => T,
    event: (before: T | undefined, after: T | undefined) => WatchLRPsResponse | undefined,
  ): Promise<{ watch: ResilientWatch; loaded: Promise<void> }> => {
    let markLoaded!: () => void;
    const loaded = new Promise<void>((r) => (markLoaded = r));
    let isLoaded = false;
    const setLoaded = (): void => {
      isLoaded = true;
      markLoaded();
    };
    if ((await kv.status()).values === 0) setLoaded();
    const onEntry = (e: KvWatchEntry): void => {
      const held = cache.get(e.key);
      if (held && e.revision <= held.revision) return;
      let after: T | undefined;
      if (e.operation === "PUT" && e.length > 0) {
        try {
          after = decode(e.value);
        } catch {
          opts.logger?.warn({ bucket: name, key: e.key }, "undecodable LRP record skipped");
        }
      }
      cache.set(e.key, { value: after, revision: e.revision });
      if (isLoaded) {
        const ev = event(held?.value, after);
        if (ev) emit(ev);
      }
      // The last of the records present at the start (or any later change) ends the load.
      if (!isLoaded && (e.delta === 0 || e.isUpdate)) setLoaded();
    };
    return { watch: startResilientWatch({ kv, nc: opts.nc, logger: opts.logger, name, onEntry }), loaded };
  };

  const ev = (init: Parameters<typeof create<typeof WatchLRPsResponseSchema>>[1]): WatchLRPsResponse => create(WatchLRPsResponseSchema, init);
  // 2015 sent desired_lrp_created before its instances' actual_lrp_created. The buckets are two
  // streams, so an instance created before its desired record arrived here waits for it (with
  // every later event of that process, to keep their order), at most HOLD_FOR_DESIRED_MS.
  const held = new Map<string, { events: WatchLRPsResponse[]; timer: NodeJS.Timeout }>();
  const release = (guid: string): void => {
    const h = held.get(guid);
    if (!h) return;
    held.delete(guid);
    clearTimeout(h.timer);
    for (const e of h.events) emit(e);
  };
  const holdOrPass = (guid: string, e: WatchLRPsResponse, created: boolean): WatchLRPsResponse | undefined => {
    const h = held.get(guid);
    if (h) return void h.events.push(e);
    if (!created || desired.get(guid)?.value) return e;
    held.set(guid, { events: [e], timer: setTimeout(() => release(guid), HOLD_FOR_DESIRED_MS).unref() });
    return undefined;
  };
  const d = await follow(buckets.desired, "desired LRPs", desired, (b) => fromBinary(DesiredLRPResponseSchema, b), (before, after) => {
    if (before && after) return ev({ event: { case: "desiredLrpChanged", value: { desiredLrpBefore: before, desiredLrpAfter: after } } });
    if (after) {
      // Emitted by follow() as this returns; what waited for it goes right after.
      if (held.has(after.processGuid)) queueMicrotask(() => release(after.processGuid));
      return ev({ event: { case: "desiredLrpCreated", value: { desiredLrp: after } } });
    }
    if (before) return ev({ event: { case: "desiredLrpRemoved", value: { desiredLrp: before } } });
    return undefined;
  });
  const a = await follow(buckets.actual, "actual LRPs", actuals, (b) => fromBinary(ActualLRPSchema, b), (before, after) => {
    if (before && after) return holdOrPass(after.processGuid, ev({ event: { case: "actualLrpChanged", value: { actualLrpBefore: before, actualLrpAfter: after } } }), false);
    if (after) return holdOrPass(after.processGuid, ev({ event: { case: "actualLrpCreated", value: { actualLrp: after } } }), true);
    if (before) return holdOrPass(before.processGuid, ev({ event: { case: "actualLrpRemoved", value: { actualLrp: before } } }), false);
    return undefined;
  });
  const present = <T>(m: Map<string, Held<T>>): T[] => [...m.values()].flatMap((h) => (h.value ? [h.value] : []));

  return {
    ready: async () => {
      await Promise.all([d.loaded, a.loaded]);
    },
    desired: () => present(desired),
    actuals: () => present(actuals),
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      for (const h of held.values()) clearTimeout(h.timer);
      held.clear();
      d.watch.stop();
      a.watch.stop();
      listeners.clear();
    },
  };
}
