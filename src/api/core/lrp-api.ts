import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ActualLRP, DesiredLRPCreateRequest, DesiredLRPResponse, DesiredLRPUpdateRequest, WatchLRPsResponse } from "../../gen/diego/v1/lrp_pb.js";
import { DiegoError, domainProblem, isValidTaskGuid, parseActualIndex, validateDesiredLRPCreateRequest, validateDesiredLRPUpdateRequest } from "../../model/index.js";
import { subjects } from "../../nats/index.js";
import { ActualLRPNotFoundError, lrpEventDomain, resolveActuals, type LrpStore, type LrpWatch, type StopRequest } from "../../store/index.js";
import { fanIn, type EventSource } from "./events.js";
import { actualLrpIndexNotFound, desiredLrpNotFound, fromLrpStoreError, invalidLrp } from "./lrp-errors.js";

// The LRP API, independent of any protocol (contract section 7; reference 2): REST, gRPC and
// Connect call this. Its side effects follow the agreed protocol between the parts: new
// UNCLAIMED instances are followed by an auction kick, and each retired CLAIMED/RUNNING
// instance by a stop message to its cell (which stops the container and removes the record).

export interface LrpApi {
  createDesiredLrp(req: DesiredLRPCreateRequest): Promise<void>;
  getDesiredLrp(processGuid: string): Promise<DesiredLRPResponse>;
  listDesiredLrps(domain?: string): Promise<DesiredLRPResponse[]>;
  updateDesiredLrp(processGuid: string, update: DesiredLRPUpdateRequest): Promise<void>;
  deleteDesiredLrp(processGuid: string): Promise<void>;
  /** One record per index (reference 2.5), of one process and/or domain ("" = any). */
  listActualLrps(filter: { processGuid?: string; domain?: string }): Promise<ActualLRP[]>;
  /** `index` as the path gave it (a number or its text): every bad one is a 400. */
  getActualLrp(processGuid: string, index: string | number): Promise<ActualLRP>;
  /** Stops one instance; convergence starts a new one in its place. */
  killActualLrp(processGuid: string, index: string | number): Promise<void>;
  upsertDomain(domain: string, ttlSeconds: number): Promise<void>;
  listDomains(): Promise<string[]>;
  /** LRP changes as a source, for a stream that also carries task events (/v1/events). */
  lrpEvents(domain: string): EventSource<WatchLRPsResponse>;
  watchLrps(domain: string, signal: AbortSignal): AsyncIterable<WatchLRPsResponse>;
}

export interface LrpApiDeps {
  store: LrpStore;
  watch: LrpWatch;
  nc: NatsConnection;
  logger?: Logger;
  /** Events a stream holds for a reader that does not keep up (default 10,000). */
  streamBacklog?: number;
}

const STREAM_BACKLOG = 10_000;

/** The JSON of `subjects.lrpStop(cellId)`. */
export const lrpStopMessage = (s: StopRequest): string =>
  JSON.stringify({ process_guid: s.processGuid, index: s.index, instance_guid: s.instanceGuid });

export function createLrpApi(deps: LrpApiDeps): LrpApi {
  const { store, watch, nc } = deps;
  const backlog = deps.streamBacklog ?? STREAM_BACKLOG;

  /** Runs a store call, naming its errors as the API does. */
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw fromLrpStoreError(err);
    }
  };
  /** No DesiredLRP can have such a guid; nor may it reach a KV key filter ("*", ">", "a.b"). */
  const requireGuid = (guid: string): void => {
    if (guid === "") throw new DiegoError("InvalidRequest", "process_guid missing from request");
    if (!isValidTaskGuid(guid)) throw desiredLrpNotFound(guid);
  };
  const requireIndex = (raw: string | number): number => {
    const parsed = parseActualIndex(String(raw));
    if ("problem" in parsed) throw new DiegoError("InvalidRequest", parsed.problem);
    return parsed.index;
  };
  // A lost kick only delays: the auctioneer also looks for UNCLAIMED instances itself.
  const kickAuction = (created: readonly ActualLRP[]): void => {
    if (created.length > 0) nc.publish(subjects.auctionKick);
  };
  // A lost stop is repaired by convergence (the instance is found extra, or its cell lost).
  const sendStops = (stops: readonly StopRequest[]): void => {
    for (const s of stops) nc.publish(subjects.lrpStop(s.cellId), lrpStopMessage(s));
  };
  const resolvedActual = async (guid: string, index: number): Promise<ActualLRP | undefined> => {
    const [instance, evacuating] = await Promise.all([store.getActual(guid, index), store.getEvacuating(guid, index)]);
    return resolveActuals(instance ? [instance.value] : [], evacuating ? [evacuating.value] : [])[0];
  };

  const lrpEvents = (domain: string): EventSource<WatchLRPsResponse> => (push) =>
    watch.onEvent((e) => {
      if (!domain || lrpEventDomain(e) === domain) push(e);
    });

  return {
    async createDesiredLrp(req) {
      const problems = validateDesiredLRPCreateRequest(req);
      if (problems.length > 0) throw invalidLrp(problems);
      const { created } = await call(() => store.desire(req));
      kickAuction(created);
    },

    async getDesiredLrp(guid) {
      requireGuid(guid);
      const stored = await store.getDesired(guid);
      if (!stored) throw desiredLrpNotFound(guid);
      return stored.value;
    },

    listDesiredLrps: (domain) => store.listDesired(domain || undefined),

    async updateDesiredLrp(guid, update) {
      requireGuid(guid);
      const problems = validateDesiredLRPUpdateRequest(update);
      if (problems.length > 0) throw invalidLrp(problems);
      const result = await call(() => store.updateDesired(guid, update));
      kickAuction(result.created);
      sendStops(result.stops);
    },

    async deleteDesiredLrp(guid) {
      requireGuid(guid);
      const result = await call(() => store.removeDesired(guid));
      sendStops(result.stops);
    },

    async listActualLrps({ processGuid = "", domain = "" }) {
      if (processGuid !== "" && !isValidTaskGuid(processGuid)) return [];
      return store.listResolved({ processGuid: processGuid || undefined, domain: domain || undefined });
    },

    async getActualLrp(guid, rawIndex) {
      const index = requireIndex(rawIndex);
      if (!isValidTaskGuid(guid)) throw actualLrpIndexNotFound(guid, index);
      const actual = await resolvedActual(guid, index);
      if (!actual) throw actualLrpIndexNotFound(guid, index);
      return actual;
    },

    async killActualLrp(guid, rawIndex) {
      const index = requireIndex(rawIndex);
      if (!isValidTaskGuid(guid) || !(await resolvedActual(guid, index))) throw actualLrpIndexNotFound(guid, index);
      try {
        sendStops((await store.retire(guid, index)).stops);
      } catch (err) {
        // Gone since the look-up (or only an evacuating copy is left): 204 all the same, as 2015.
        if (!(err instanceof ActualLRPNotFoundError)) throw fromLrpStoreError(err);
      }
    },

    async upsertDomain(domain, ttlSeconds) {
      const problem = domainProblem(domain);
      if (problem) throw new DiegoError("InvalidRequest", problem);
      await call(() => store.upsertDomain(domain, ttlSeconds));
    },

    listDomains: () => store.freshDomains(),

    lrpEvents,

    watchLrps: (domain, signal) => fanIn([lrpEvents(domain)], signal, backlog),
  };
}
