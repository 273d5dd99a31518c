import { randomUUID } from "node:crypto";
import { clone, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import PQueue from "p-queue";
import {
  ActualLRPSchema,
  ActualLrpState,
  DesiredLRPResponseSchema,
  DomainFreshnessSchema,
  ModificationTagSchema,
  RoutesSchema,
  type ActualLRP,
  type DesiredLRPCreateRequest,
  type DesiredLRPResponse,
  type DesiredLRPUpdateRequest,
  type DomainFreshness,
} from "../gen/diego/v1/lrp_pb.js";
import { DEFAULT_MAX_PAYLOAD, lrpTransitions as T, MAX_ROUTES_BYTES, type CrashPolicy } from "../model/index.js";
import { ACTUAL_LRPS_BUCKET, DESIRED_LRPS_BUCKET, DOMAINS_BUCKET, subjectToken, type LrpBuckets } from "../nats/index.js";
import { nowNanos } from "./clock.js";
import { createKvClient, KvConflictError, type KvClient } from "./kv-client.js";
import { ActualLRPExistsError, ActualLRPNotFoundError, DesiredLRPExistsError, DesiredLRPNotFoundError, DesiredLRPTooLargeError, LrpContentionError } from "./lrp-errors.js";

// The LRP store: DesiredLRPs, ActualLRPs and domain freshness in three JetStream KV buckets
// (src/nats/buckets.ts openLrpBuckets), protobuf binary values. Every write names the revision
// it read (kv-client.ts), so a change made in between fails it and the operation is judged again
// against the fresh record: of two cells claiming one index, exactly one wins.
//
// Keys: desired `<process_guid>`; actual `<process_guid>.<index>`, and
// `<process_guid>.<index>.evacuating` for the copy a draining cell keeps serving (reference 3.5).
// Retiring a CLAIMED or RUNNING instance needs its cell to stop it: the store returns whom to ask
// (a RetirePlan) rather than talking to cells.

export interface Stored<T> {
  value: T;
  revision: number;
}

/** One record's change: before and after (undefined: absent / removed). */
export interface Change<T> {
  before: T | undefined;
  after: T | undefined;
}

/** A retired instance the caller must have its cell stop (the cell then removes the record). */
export interface StopRequest {
  processGuid: string;
  index: number;
  cellId: string;
  instanceGuid: string;
}

export interface DesireResult {
  desired: DesiredLRPResponse;
  /** The UNCLAIMED instances created for 0..instances-1, to be auctioned. */
  created: ActualLRP[];
}

export interface UpdateResult extends Change<DesiredLRPResponse> {
  /** Instances created by a scale up (to be auctioned). */
  created: ActualLRP[];
  /** Instances removed at once by a scale down (UNCLAIMED, CRASHED). */
  removed: ActualLRP[];
  /** Instances a scale down must have their cells stop. */
  stops: StopRequest[];
}

export interface RetireResult {
  removed: ActualLRP[];
  stops: StopRequest[];
}

export interface EvacuateResult {
  instance: Change<ActualLRP>;
  /** The RUNNING copy kept while the replacement starts (none for a CLAIMED instance). */
  evacuating?: ActualLRP;
}

export interface ListActualsFilter {
  processGuid?: string;
  domain?: string;
}

export interface LrpStore {
  /** Stores a new DesiredLRP and one UNCLAIMED instance per index; DesiredLRPExistsError if taken. */
  desire(req: DesiredLRPCreateRequest): Promise<DesireResult>;
  getDesired(processGuid: string): Promise<Stored<DesiredLRPResponse> | undefined>;
  listDesired(domain?: string): Promise<DesiredLRPResponse[]>;
  /** Instances, routes, annotation; raises modification_tag.index; scales (never gated on freshness). */
  updateDesired(processGuid: string, update: DesiredLRPUpdateRequest): Promise<UpdateResult>;
  /** Removes the DesiredLRP and retires every instance of it. */
  removeDesired(processGuid: string): Promise<{ desired: DesiredLRPResponse } & RetireResult>;

  /** A new UNCLAIMED instance (a missing index, a lost cell's); ActualLRPExistsError if one is there. */
  createActual(key: T.ActualKey): Promise<ActualLRP>;
  getActual(processGuid: string, index: number): Promise<Stored<ActualLRP> | undefined>;
  getEvacuating(processGuid: string, index: number): Promise<Stored<ActualLRP> | undefined>;
  /** Instance records (evacuating copies not included). */
  listActuals(filter?: ListActualsFilter): Promise<ActualLRP[]>;
  listEvacuating(filter?: ListActualsFilter): Promise<ActualLRP[]>;
  /** One record per index, as the API shows them (reference 2.5). */
  listResolved(filter?: ListActualsFilter): Promise<ActualLRP[]>;

  /** Applies one transition with compare-and-swap, re-reading on conflicts. */
  apply(processGuid: string, index: number, transition: T.ActualTransition): Promise<Change<ActualLRP>>;
  /** `known`: the record as just read, so the first attempt writes without reading it again. */
  claim(processGuid: string, index: number, key: T.InstanceKey, known?: Stored<ActualLRP>): Promise<Change<ActualLRP>>;
  start(processGuid: string, index: number, key: T.InstanceKey, net: T.NetInfo): Promise<Change<ActualLRP>>;
  crash(processGuid: string, index: number, key: T.InstanceKey, reason: string): Promise<Change<ActualLRP>>;
  failPlacement(processGuid: string, index: number, error: string): Promise<Change<ActualLRP>>;
  unclaim(processGuid: string, index: number, key?: T.InstanceKey): Promise<Change<ActualLRP>>;
  remove(processGuid: string, index: number, key?: T.InstanceKey): Promise<Change<ActualLRP>>;
  /** Kill / scale down / extra: UNCLAIMED and CRASHED removed, others to be stopped by their cell. */
  retire(processGuid: string, index: number): Promise<RetireResult>;
  /** A draining cell hands the instance back, keeping a RUNNING one as an evacuating copy. */
  evacuate(processGuid: string, index: number, key: T.InstanceKey): Promise<EvacuateResult>;
  /** The replacement runs (or the evacuation timed out): drop the copy, only if it is still this instance's. */
  removeEvacuating(processGuid: string, index: number, key: T.InstanceKey): Promise<ActualLRP | undefined>;

  /** Marks a domain fresh for ttlSeconds (0: for ever). */
  upsertDomain(domain: string, ttlSeconds: number): Promise<DomainFreshness>;
  freshDomains(): Promise<string[]>;
  close(): void;
}

export interface LrpStoreOptions {
  crashPolicy?: CrashPolicy;
  /** The clock, ns since the epoch (tests move it). */
  now?: () => bigint;
}

const MAX_CAS_ATTEMPTS = 64;
/** Instance records one desire or scale-up writes at once. */
const CREATE_CONCURRENCY = 256;
/** What an update may add to a DesiredLRP record (annotation and routes at their limits, tags) and NATS's headers. */
const DESIRED_HEADROOM_BYTES = 10 * 1024 + MAX_ROUTES_BYTES + 2 * 1024;

export const actualKey = (processGuid: string, index: number): string => `${processGuid}.${index}`;
export const evacuatingKey = (processGuid: string, index: number): string => `${processGuid}.${index}.evacuating`;

const encodeActual = (a: ActualLRP): Uint8Array => toBinary(ActualLRPSchema, a);
const decodeActual = (b: Uint8Array): ActualLRP => fromBinary(ActualLRPSchema, b);
const encodeDesired = (d: DesiredLRPResponse): Uint8Array => toBinary(DesiredLRPResponseSchema, d);
const decodeDesired = (b: Uint8Array): DesiredLRPResponse => fromBinary(DesiredLRPResponseSchema, b);

/** A DesiredLRP record from a create request: a new epoch, index 0; empty routes left out, as 2015 wrote them. */
export function newDesired(req: DesiredLRPCreateRequest, epoch: string): DesiredLRPResponse {
  const { $typeName: _ignored, ...fields } = req;
  const d = create(DesiredLRPResponseSchema, { ...fields, modificationTag: { epoch, index: 0 } });
  if (d.routes && Object.keys(d.routes.entries).length === 0) d.routes = undefined;
  return d;
}

/** The update applied (2015 ApplyUpdate): the tag's index is raised even when nothing changed. */
export function applyUpdate(d: DesiredLRPResponse, u: DesiredLRPUpdateRequest): DesiredLRPResponse {
  const c = clone(DesiredLRPResponseSchema, d);
  if (u.instances !== undefined) c.instances = u.instances;
  if (u.annotation !== undefined) c.annotation = u.annotation;
  if (u.routes !== undefined) c.routes = Object.keys(u.routes.entries).length === 0 ? undefined : clone(RoutesSchema, u.routes);
  c.modificationTag = create(ModificationTagSchema, { epoch: d.modificationTag?.epoch ?? "", index: (d.modificationTag?.index ?? 0) + 1 });
  return c;
}

/**
 * One record per index (reference 2.5): the evacuating copy when there is no instance record or
 * the instance is UNCLAIMED or CLAIMED (its replacement is not up yet), else the instance.
 */
export function resolveActuals(instances: ActualLRP[], evacuating: ActualLRP[]): ActualLRP[] {
  const byIndex = new Map<string, ActualLRP>();
  for (const a of instances) byIndex.set(actualKey(a.processGuid, a.index), a);
  for (const e of evacuating) {
    const k = actualKey(e.processGuid, e.index);
    const a = byIndex.get(k);
    if (!a || a.state === ActualLrpState.UNCLAIMED || a.state === ActualLrpState.CLAIMED) byIndex.set(k, e);
  }
  return [...byIndex.values()];
}

/**
 * `_buckets` from openLrpBuckets, which proves the buckets exist: reads and writes go straight to
 * their streams (kv-client.ts), listings ask the streams for their subjects.
 */
export function createLrpStore(nc: NatsConnection, _buckets: LrpBuckets, opts: LrpStoreOptions = {}): LrpStore {
  const desiredKv = createKvClient(nc, DESIRED_LRPS_BUCKET);
  const actualKv = createKvClient(nc, ACTUAL_LRPS_BUCKET);
  const domainsClient = createKvClient(nc, DOMAINS_BUCKET);
  const now = opts.now ?? nowNanos;

  const read = async <V>(client: KvClient, key: string, decode: (b: Uint8Array) => V): Promise<Stored<V> | undefined> => {
    const e = await client.get(key);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return undefined;
    return { value: decode(e.value), revision: e.revision };
  };

  /** Writes a new key, or over a delete marker; false if a live record is there. */
  const putNew = async (client: KvClient, key: string, value: Uint8Array): Promise<boolean> => {
    try {
      await client.put(key, value, 0);
      return true;
    } catch (err) {
      if (!(err instanceof KvConflictError)) throw err;
    }
    const e = await client.get(key);
    if (!e || e.operation === "PUT") return false;
    try {
      await client.put(key, value, e.revision);
      return true;
    } catch (err) {
      if (err instanceof KvConflictError) return false;
      throw err;
    }
  };

  const getActual = (guid: string, index: number) => read(actualKv, actualKey(guid, index), decodeActual);
  const getEvacuating = (guid: string, index: number) => read(actualKv, evacuatingKey(guid, index), decodeActual);

  const applyAt = async (key: string, notFound: () => Error, transition: T.ActualTransition, known?: Stored<ActualLRP>): Promise<Change<ActualLRP>> => {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = attempt === 0 && known ? known : await read(actualKv, key, decodeActual);
      if (!current) throw notFound();
      const result = transition(current.value, now());
      if (result === T.UNCHANGED) return { before: current.value, after: current.value };
      try {
        if (result === T.REMOVE) {
          await actualKv.delete(key, current.revision);
          return { before: current.value, after: undefined };
        }
        await actualKv.put(key, encodeActual(result), current.revision);
        return { before: current.value, after: result };
      } catch (err) {
        if (!(err instanceof KvConflictError)) throw err;
      }
    }
    throw new LrpContentionError(key);
  };

  const apply = (guid: string, index: number, transition: T.ActualTransition, known?: Stored<ActualLRP>) =>
    applyAt(actualKey(guid, index), () => new ActualLRPNotFoundError(guid, index), transition, known);

  const createActual = async (key: T.ActualKey): Promise<ActualLRP> => {
    const a = T.newActual(key, now(), randomUUID());
    if (!(await putNew(actualKv, actualKey(key.processGuid, key.index), encodeActual(a)))) throw new ActualLRPExistsError(key.processGuid, key.index);
    return a;
  };

  /**
   * Creates the missing instances among `indices`; existing ones are left as they are. At most
   * CREATE_CONCURRENCY at once: 10,000 writes sent together queue so long in JetStream that the
   * last ones time out on a loaded machine.
   */
  const createActuals = async (d: DesiredLRPResponse, indices: number[]): Promise<ActualLRP[]> => {
    const queue = new PQueue({ concurrency: CREATE_CONCURRENCY });
    const made = await Promise.all(
      indices.map((index) =>
        queue.add(() =>
          createActual({ processGuid: d.processGuid, index, domain: d.domain }).catch((err: unknown) => {
            if (err instanceof ActualLRPExistsError) return undefined;
            throw err;
          }),
        ),
      ),
    );
    return made.filter((a): a is ActualLRP => a !== undefined);
  };

  /**
   * Writes the copy; one already there for the same instance (a retried evacuation) is kept, one
   * of an earlier instance (whose cell drained before) is replaced: this one is what serves now.
   */
  const putEvacuating = async (guid: string, index: number, copy: ActualLRP): Promise<void> => {
    const key = evacuatingKey(guid, index);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const existing = await read(actualKv, key, decodeActual);
      if (existing && existing.value.instanceGuid === copy.instanceGuid && existing.value.cellId === copy.cellId) return;
      try {
        if (existing) await actualKv.put(key, encodeActual(copy), existing.revision);
        else if (!(await putNew(actualKv, key, encodeActual(copy)))) continue;
        return;
      } catch (err) {
        if (!(err instanceof KvConflictError)) throw err;
      }
    }
    throw new LrpContentionError(key);
  };

  const retire = async (guid: string, index: number): Promise<RetireResult> => {
    let plan: T.RetirePlan = { kind: "remove" };
    const change = await apply(guid, index, (a) => {
      plan = T.retirePlan(a);
      return plan.kind === "remove" ? T.REMOVE : T.UNCHANGED;
    });
    const p = plan as T.RetirePlan;
    if (p.kind === "stop") return { removed: [], stops: [{ processGuid: guid, index, cellId: p.cellId, instanceGuid: p.instanceGuid }] };
    return { removed: change.before ? [change.before] : [], stops: [] };
  };

  /** Retires each index, an absent one being nothing to do. */
  const retireAll = async (guid: string, indices: number[]): Promise<RetireResult> => {
    const results = await Promise.all(
      indices.map((i) =>
        retire(guid, i).catch((err: unknown) => {
          if (err instanceof ActualLRPNotFoundError) return { removed: [], stops: [] };
          throw err;
        }),
      ),
    );
    return { removed: results.flatMap((r) => r.removed), stops: results.flatMap((r) => r.stops) };
  };

  // The keys of a bucket from its stream's per-subject counts (one request, paged by nats.js),
  // not kv.keys(): that one's ordered consumer, racing a key being rewritten, can list the key
  // twice or miss the end of the listing and wait ~30 s for an idle heartbeat. Deleted keys are
  // listed too (their delete marker is a message); the reads that follow drop them.
  let manager: Promise<JetStreamManager> | undefined;
  const listKeys = async (bucket: string, filter: string): Promise<string[]> => {
    manager ??= jetstreamManager(nc).catch((err: unknown) => {
      manager = undefined;
      throw err;
    });
    const prefix = `$KV.${bucket}.`;
    const info = await (await manager).streams.info(`KV_${bucket}`, { subjects_filter: prefix + filter });
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
  };

  const listActualRecords = async (filter: ListActualsFilter, evacuating: boolean): Promise<ActualLRP[]> => {
    const subject = `${filter.processGuid ?? "*"}.*${evacuating ? ".evacuating" : ""}`;
    const keys = await listKeys(ACTUAL_LRPS_BUCKET, subject);
    const records = await Promise.all(keys.map((k) => read(actualKv, k, decodeActual)));
    return records.flatMap((r) => (r && (filter.domain === undefined || filter.domain === "" || r.value.domain === filter.domain) ? [r.value] : []));
  };

  return {
    async desire(req) {
      const d = newDesired(req, randomUUID());
      const bytes = encodeDesired(d);
      // One that an update could push past NATS's max_payload is never stored.
      const limit = (nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - DESIRED_HEADROOM_BYTES;
      if (bytes.length > limit) throw new DesiredLRPTooLargeError(bytes.length, limit);
      if (!(await putNew(desiredKv, d.processGuid, bytes))) throw new DesiredLRPExistsError(d.processGuid);
      const created = await createActuals(
        d,
        Array.from({ length: d.instances }, (_, i) => i),
      );
      return { desired: d, created };
    },

    getDesired: (guid) => read(desiredKv, guid, decodeDesired),

    async listDesired(domain) {
      const keys = await listKeys(DESIRED_LRPS_BUCKET, ">");
      const records = await Promise.all(keys.map((k) => read(desiredKv, k, decodeDesired)));
      return records.flatMap((r) => (r && (!domain || r.value.domain === domain) ? [r.value] : []));
    },

    async updateDesired(guid, update) {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const current = await read(desiredKv, guid, decodeDesired);
        if (!current) throw new DesiredLRPNotFoundError(guid);
        const after = applyUpdate(current.value, update);
        try {
          await desiredKv.put(guid, encodeDesired(after), current.revision);
        } catch (err) {
          if (err instanceof KvConflictError) continue;
          throw err;
        }
        const [from, to] = [current.value.instances, after.instances];
        const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
        const created = to > from ? await createActuals(after, range(from, to)) : [];
        const retired = to < from ? await retireAll(guid, range(to, from)) : { removed: [], stops: [] };
        return { before: current.value, after, created, ...retired };
      }
      throw new LrpContentionError(guid);
    },

    async removeDesired(guid) {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const current = await read(desiredKv, guid, decodeDesired);
        if (!current) throw new DesiredLRPNotFoundError(guid);
        try {
          await desiredKv.delete(guid, current.revision);
        } catch (err) {
          if (err instanceof KvConflictError) continue; // updated meanwhile: delete that
          throw err;
        }
        // Every instance record of the guid, also those above the instance count (extras).
        const indices = (await listActualRecords({ processGuid: guid }, false)).map((a) => a.index);
        return { desired: current.value, ...(await retireAll(guid, indices)) };
      }
      throw new LrpContentionError(guid);
    },

    createActual,
    getActual,
    getEvacuating,
    listActuals: (filter = {}) => listActualRecords(filter, false),
    listEvacuating: (filter = {}) => listActualRecords(filter, true),
    async listResolved(filter = {}) {
      const [instances, evacuating] = await Promise.all([listActualRecords(filter, false), listActualRecords(filter, true)]);
      return resolveActuals(instances, evacuating);
    },

    apply,
    claim: (guid, index, key, known) => apply(guid, index, T.claim(key), known),
    start: (guid, index, key, net) => apply(guid, index, T.start(key, net)),
    crash: (guid, index, key, reason) => apply(guid, index, T.crash(key, reason, opts.crashPolicy)),
    failPlacement: (guid, index, error) => apply(guid, index, T.failPlacement(error)),
    unclaim: (guid, index, key) => apply(guid, index, T.unclaim(key)),
    remove: (guid, index, key) => apply(guid, index, T.remove(key)),
    retire,

    async evacuate(guid, index, key) {
      const current = await getActual(guid, index);
      if (!current) throw new ActualLRPNotFoundError(guid, index);
      // Refused here (wrong state or instance) before any copy is written.
      const judged = T.evacuate(key)(current.value, now());
      let evacuating: ActualLRP | undefined;
      if (judged !== T.UNCHANGED && judged !== T.REMOVE && current.value.state === ActualLrpState.RUNNING) {
        // The copy first: should the unclaim then fail, the instance is still RUNNING here and
        // the cell tries again; the other order could leave nothing serving.
        evacuating = T.evacuatingCopy(current.value, now(), randomUUID());
        await putEvacuating(guid, index, evacuating);
      }
      const instance = await apply(guid, index, T.evacuate(key));
      return { instance, evacuating };
    },

    async removeEvacuating(guid, index, key) {
      try {
        const change = await applyAt(evacuatingKey(guid, index), () => new ActualLRPNotFoundError(guid, index), T.remove(key));
        return change.before;
      } catch (err) {
        if (err instanceof ActualLRPNotFoundError) return undefined;
        throw err;
      }
    },

    async upsertDomain(domain, ttlSeconds) {
      const record = create(DomainFreshnessSchema, {
        domain,
        ttlSeconds,
        expiresAt: ttlSeconds === 0 ? 0n : now() + BigInt(ttlSeconds) * 1_000_000_000n,
      });
      const key = subjectToken(domain);
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const e = await domainsClient.get(key);
        try {
          await domainsClient.put(key, toBinary(DomainFreshnessSchema, record), e?.revision ?? 0);
          return record;
        } catch (err) {
          if (!(err instanceof KvConflictError)) throw err;
        }
      }
      throw new LrpContentionError(key);
    },

    async freshDomains() {
      const keys = await listKeys(DOMAINS_BUCKET, ">");
      const records = await Promise.all(keys.map((k) => read(domainsClient, k, (b) => fromBinary(DomainFreshnessSchema, b))));
      const t = now();
      return records.flatMap((r) => (r && isFresh(r.value, t) ? [r.value.domain] : []));
    },

    close() {
      desiredKv.close();
      actualKv.close();
      domainsClient.close();
    },
  };
}

export const isFresh = (d: DomainFreshness, now: bigint): boolean => d.expiresAt === 0n || now < d.expiresAt;
