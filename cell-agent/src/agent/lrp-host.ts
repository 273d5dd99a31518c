import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { LrpStartSchema, type LrpStart } from "../../../src/gen/diego/v1/internal_pb.js";
import { ActualLrpState, type DesiredLRPResponse } from "../../../src/gen/diego/v1/lrp_pb.js";
import { lrpTransitions } from "../../../src/model/index.js";
import { subjects } from "../../../src/nats/index.js";
import { ActualLRPNotFoundError, type LrpStore } from "../../../src/store/index.js";
import type { ResourceLedger } from "../capacity/index.js";
import { createStartSlots, startLrpInstance, type LrpInstance, type LrpInstanceSpec, type LrpRunnerDeps, type RunningInfo } from "../lrp/index.js";

// The LRP instances of one cell: claims what the auction sent, runs each in its own container
// (cell-agent/src/lrp), writes RUNNING / crashes to the store, stops on request and drains on
// evacuation. The store's compare-and-swap decides every race; this keeps no state the store
// does not also have, except which containers run here.

export interface LrpHostDeps {
  cellId: string;
  store: LrpStore;
  nc: NatsConnection;
  ledger: ResourceLedger;
  runner: LrpRunnerDeps;
  logger: Logger;
}

/** `{"process_guid", "index", "instance_guid"}` on subjects.lrpStop(cellId). */
export interface StopMessage {
  processGuid: string;
  index: number;
  instanceGuid: string;
}

export interface LrpHost {
  /** Claims and starts what fits; returns the instances it could not take. */
  take(starts: LrpStart[]): Promise<LrpStart[]>;
  /** Stops the instance (grace, kill), then removes its record. */
  stop(msg: StopMessage): Promise<void>;
  /** process_guid -> instances here (for bids). */
  counts(): Record<string, number>;
  size(): number;
  /**
   * Hands every instance back to the auction and keeps each RUNNING one serving until its
   * replacement is RUNNING elsewhere or `timeoutMs` passes; then stops it.
   */
  evacuate(timeoutMs: number): Promise<void>;
  /** Stops every container, leaving the records to the converger (a cell shutting down). */
  shutdown(): Promise<void>;
}

interface Held {
  instance: LrpInstance;
  key: lrpTransitions.InstanceKey;
  processGuid: string;
  index: number;
  /** Handed back by evacuation: its events no longer write the instance record. */
  evacuated: boolean;
  /** Stop asked: its end is not a crash. */
  stopping: boolean;
  /** Its store writes, in order: a crash written before its RUNNING would let RUNNING revive it. */
  writes: Promise<unknown>;
}

const WRITE_ATTEMPTS = 8;
const WRITE_BACKOFF_MS = 250;
const EVACUATION_POLL_MS = 250;
/** Instances making their container at once (see lrp/start-slots.ts). */
const START_CONCURRENCY = 16;

const holdKey = (guid: string, index: number): string => `${guid}.${index}`;
const ledgerKey = (guid: string, index: number, instanceGuid: string): string => `lrp:${guid}.${index}:${instanceGuid}`;

export function parseStopMessage(data: Uint8Array): StopMessage | undefined {
  try {
    const m = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
    const { process_guid: processGuid, index, instance_guid: instanceGuid } = m;
    if (typeof processGuid !== "string" || typeof instanceGuid !== "string" || !Number.isInteger(index)) return undefined;
    return { processGuid, index: index as number, instanceGuid };
  } catch {
    return undefined;
  }
}

/** The instance as the runner takes it, from its DesiredLRP. */
export function instanceSpec(d: DesiredLRPResponse, index: number, instanceGuid: string): LrpInstanceSpec {
  return {
    processGuid: d.processGuid,
    index,
    instanceGuid,
    domain: d.domain,
    rootfs: d.rootfs,
    setup: d.setup,
    action: d.action!,
    monitor: d.monitor,
    env: d.env.map((e) => ({ name: e.name, value: e.value })),
    ports: [...d.ports],
    memoryMb: Math.max(0, d.memoryMb),
    diskMb: Math.max(0, d.diskMb),
    cpuWeight: d.cpuWeight,
    privileged: d.privileged,
    startTimeoutSec: d.startTimeout,
    logGuid: d.logGuid,
    logSource: d.logSource,
    securityGroupRules: d.egressRules,
  };
}

/** A store write retried through NATS trouble; a refusal by the record's state is final. */
async function write<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const final = err instanceof lrpTransitions.ActualLRPTransitionError || err instanceof ActualLRPNotFoundError;
      if (final || attempt >= WRITE_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, WRITE_BACKOFF_MS * attempt));
    }
  }
}

export function createLrpHost(deps: LrpHostDeps): LrpHost {
  const { store, ledger, cellId, nc } = deps;
  const runner: LrpRunnerDeps = { ...deps.runner, startSlots: deps.runner.startSlots ?? createStartSlots(START_CONCURRENCY) };
  const held = new Map<string, Held>();
  let draining = false;

  const release = (h: Held, kick = true): void => {
    ledger.release(ledgerKey(h.processGuid, h.index, h.key.instanceGuid));
    if (held.get(holdKey(h.processGuid, h.index)) === h) held.delete(holdKey(h.processGuid, h.index));
    // Room was freed: work waiting for room gets an auction now.
    if (kick) nc.publish(subjects.auctionKick, "");
  };

  /** Runs after the instance's earlier writes. */
  const inOrder = <T>(h: Held, fn: () => Promise<T>): Promise<T> => {
    const p = h.writes.then(fn);
    h.writes = p.catch(() => undefined);
    return p;
  };

  const onRunning = (h: Held, info: RunningInfo): void => {
    if (h.evacuated || h.stopping) return;
    const net = { address: info.address, ports: info.ports.map((p) => ({ containerPort: p.container_port, hostPort: p.host_port })) };
    void inOrder<unknown>(h, () => (h.evacuated || h.stopping ? Promise.resolve() : write(() => store.start(h.processGuid, h.index, h.key, net)))).catch((err: unknown) => {
      // No longer ours (removed, retired, taken): nothing may keep running for it.
      deps.logger.warn({ err, lrp: h.processGuid, index: h.index }, "instance could not be marked RUNNING; stopping it");
      h.stopping = true;
      void h.instance.stop();
    });
  };

  const onCrashed = (h: Held, reason: string): void => {
    const recording = !h.stopping && !h.evacuated;
    // A kick before the crash is recorded would start an auction that finds the index still
    // RUNNING and holds up the one that restarts it: one kick once it is written instead.
    release(h, !recording);
    if (h.stopping) return;
    if (h.evacuated) {
      // Its evacuating copy no longer serves.
      void inOrder(h, () => write(() => store.removeEvacuating(h.processGuid, h.index, h.key))).catch(() => undefined);
      return;
    }
    void inOrder(h, () => write(() => store.crash(h.processGuid, h.index, h.key, reason)))
      .then(async (change) => {
        // A crash 1 or 2 is UNCLAIMED again, to restart at once: this cell just ran it and has
        // its room back, so it claims it again itself (a compare-and-swap like any claim),
        // sparing the auction's round trips. The auction places it when this cell cannot.
        if (change.after?.state !== ActualLrpState.UNCLAIMED || draining) return false;
        await takeOne(create(LrpStartSchema, { processGuid: h.processGuid, index: h.index }), (g) => store.getDesired(g));
        return held.has(holdKey(h.processGuid, h.index));
      })
      .catch((err: unknown) => {
        deps.logger.info({ err, lrp: h.processGuid, index: h.index }, "crash not recorded (the record moved on)");
        return false;
      })
      // Room was freed, or the index waits for a cell.
      .then((restartedHere) => restartedHere || nc.publish(subjects.auctionKick, ""));
  };

  const launch = (d: DesiredLRPResponse, index: number, key: lrpTransitions.InstanceKey): void => {
    const spec = instanceSpec(d, index, key.instanceGuid);
    const h: Held = { key, processGuid: d.processGuid, index, evacuated: false, stopping: false, writes: Promise.resolve(), instance: undefined as unknown as LrpInstance };
    held.set(holdKey(d.processGuid, index), h);
    h.instance = startLrpInstance(spec, runner, {
      onRunning: (info) => onRunning(h, info),
      onCrashed: ({ reason }) => onCrashed(h, reason),
      onStopped: () => release(h),
    });
  };

  /** Claims one instance; false when it does not fit. */
  const takeOne = async (s: LrpStart, desiredOf: (guid: string) => ReturnType<LrpStore["getDesired"]>): Promise<boolean> => {
    const [actual, desired] = await Promise.all([store.getActual(s.processGuid, s.index), desiredOf(s.processGuid)]);
    const a = actual?.value;
    const d = desired?.value;
    // Placed meanwhile, removed, or deleted: nothing to do.
    if (!a || !d || a.state !== ActualLrpState.UNCLAIMED || !d.action || held.has(holdKey(s.processGuid, s.index))) return true;
    const key = { cellId, instanceGuid: randomUUID() };
    const room = ledgerKey(s.processGuid, s.index, key.instanceGuid);
    if (!ledger.reserve(room, Math.max(0, d.memoryMb), Math.max(0, d.diskMb))) return false;
    try {
      await write(() => store.claim(s.processGuid, s.index, key));
    } catch (err) {
      ledger.release(room);
      deps.logger.debug({ lrp: s.processGuid, index: s.index, reason: (err as Error).message }, "instance claim lost");
      return true;
    }
    try {
      launch(d, s.index, key);
    } catch (err) {
      // A spec the runner refuses: give the index back rather than hold it with nothing running.
      ledger.release(room);
      held.delete(holdKey(s.processGuid, s.index));
      deps.logger.error({ err, lrp: s.processGuid, index: s.index }, "instance could not be started");
      await store.crash(s.processGuid, s.index, key, (err as Error).message).catch(() => undefined);
    }
    return true;
  };

  /** Waits until another instance of the index is RUNNING, or the deadline. */
  const replacementRunning = async (h: Held, deadline: number): Promise<void> => {
    while (Date.now() < deadline && h.instance.phase() === "running") {
      const current = await store.getActual(h.processGuid, h.index).catch(() => null);
      const a = current?.value;
      if (current === undefined) return; // deleted: nobody wants the index any more
      if (a && a.state === ActualLrpState.RUNNING && a.instanceGuid !== h.key.instanceGuid) return;
      await new Promise((r) => setTimeout(r, Math.min(EVACUATION_POLL_MS, Math.max(0, deadline - Date.now()))));
    }
  };

  const evacuateOne = async (h: Held, deadline: number): Promise<void> => {
    const wasRunning = h.instance.phase() === "running";
    h.evacuated = true;
    try {
      await inOrder(h, () => write(() => store.evacuate(h.processGuid, h.index, h.key)));
      nc.publish(subjects.auctionKick, "");
    } catch (err) {
      deps.logger.info({ err, lrp: h.processGuid, index: h.index }, "instance not evacuated (the record moved on)");
    }
    if (wasRunning) await replacementRunning(h, deadline);
    h.stopping = true;
    await h.instance.stop();
    if (wasRunning) await write(() => store.removeEvacuating(h.processGuid, h.index, h.key)).catch(() => undefined);
  };

  return {
    async take(starts) {
      if (draining) return starts;
      // One read of each DesiredLRP per batch: an auction sends many indices of one process.
      const desired = new Map<string, ReturnType<LrpStore["getDesired"]>>();
      const desiredOf = (guid: string): ReturnType<LrpStore["getDesired"]> => {
        let d = desired.get(guid);
        if (!d) desired.set(guid, (d = store.getDesired(guid)));
        return d;
      };
      const taken = await Promise.all(starts.map((s) => takeOne(s, desiredOf).catch(() => false)));
      return starts.filter((_, i) => !taken[i]).map((s) => create(LrpStartSchema, s));
    },

    async stop(msg) {
      const h = held.get(holdKey(msg.processGuid, msg.index));
      const key = { cellId, instanceGuid: msg.instanceGuid };
      if (h && h.key.instanceGuid === msg.instanceGuid) {
        h.stopping = true;
        await h.instance.stop();
      }
      // Also when nothing runs here (a restarted cell): the record is this cell's to remove.
      await write(() => store.remove(msg.processGuid, msg.index, key)).catch((err: unknown) =>
        deps.logger.debug({ err, lrp: msg.processGuid, index: msg.index }, "instance record not removed"),
      );
    },

    counts() {
      const out: Record<string, number> = {};
      for (const h of held.values()) out[h.processGuid] = (out[h.processGuid] ?? 0) + 1;
      return out;
    },

    size: () => held.size,

    async evacuate(timeoutMs) {
      draining = true;
      const deadline = Date.now() + timeoutMs;
      await Promise.all([...held.values()].map((h) => evacuateOne(h, deadline).catch((err: unknown) => deps.logger.error({ err }, "evacuation failed"))));
    },

    async shutdown() {
      draining = true;
      await Promise.all(
        [...held.values()].map((h) => {
          h.stopping = true;
          return h.instance.stop();
        }),
      );
    },
  };
}
