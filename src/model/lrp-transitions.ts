import { clone, create } from "@bufbuild/protobuf";
import { ActualLRPSchema, ActualLrpState, ModificationTagSchema, PortMappingSchema, type ActualLRP, type PortMapping } from "../gen/diego/v1/lrp_pb.js";
import { DEFAULT_CRASH_POLICY, nextCrashCount, restartsImmediately, type CrashPolicy } from "./lrp-crash-policy.js";
import { capFailureReason } from "./record-limits.js";

// The ActualLRP state machine (reference 3.2) as named, pure transitions:
// (record, now) -> new record, UNCHANGED ("already so": nothing to write) or REMOVE. The store
// applies each with a compare-and-swap on the record's revision (src/store/lrp-store.ts), so of
// two racing writers one wins and the other re-reads and is judged again: two cells can never
// both hold one index. modification_tag as 2015 kept it (3.4): a new epoch per record created,
// index + 1 per change.
//
//   (none) --create--> UNCLAIMED --claim--> CLAIMED --start--> RUNNING
//   UNCLAIMED --failPlacement--> UNCLAIMED + placement_error
//   CLAIMED/RUNNING --crash--> UNCLAIMED (crash 1, 2: restart now) | CRASHED (backoff)
//   CRASHED --unclaim--> UNCLAIMED (backoff over)        CLAIMED --unclaim--> UNCLAIMED (cell gives it back)
//   RUNNING --evacuate--> UNCLAIMED + an evacuating RUNNING copy; CLAIMED --evacuate--> UNCLAIMED
//   any --remove--> (deleted)      retire: UNCLAIMED/CRASHED deleted, CLAIMED/RUNNING stopped by its cell

export const UNCHANGED = Symbol("unchanged");
export const REMOVE = Symbol("remove");
export type TransitionResult = ActualLRP | typeof UNCHANGED | typeof REMOVE;
export type ActualTransition = (actual: ActualLRP, now: bigint) => TransitionResult;

/** Which instance of an index a cell holds: its cell and container. */
export interface InstanceKey {
  cellId: string;
  instanceGuid: string;
}

/** Where a RUNNING instance is reached. */
export interface NetInfo {
  address: string;
  ports: Array<{ containerPort: number; hostPort: number }>;
}

export type ActualOperation = "claim" | "start" | "crash" | "fail" | "unclaim" | "evacuate" | "remove";

/** A transition the record's state refuses; 2015's texts ("cannot claim actual LRP"). */
export class ActualLRPTransitionError extends Error {
  override readonly name = "ActualLRPTransitionError";
  constructor(
    readonly operation: ActualOperation,
    readonly actual: ActualLRP,
    detail: string,
  ) {
    super(`cannot ${operation} actual LRP: ${detail}`);
  }
}

export const stateName = (s: ActualLrpState): string => ActualLrpState[s] ?? "INVALID";

const refuse = (operation: ActualOperation, a: ActualLRP, why?: string): never => {
  throw new ActualLRPTransitionError(operation, a, why ?? `it is ${stateName(a.state)}`);
};

const holds = (a: ActualLRP, key: InstanceKey): boolean => a.cellId === key.cellId && a.instanceGuid === key.instanceGuid;

/** A copy with the tag's index raised and `change` applied. */
function next(a: ActualLRP, change: (c: ActualLRP) => void): ActualLRP {
  const c = clone(ActualLRPSchema, a);
  c.modificationTag = create(ModificationTagSchema, { epoch: a.modificationTag?.epoch ?? "", index: (a.modificationTag?.index ?? 0) + 1 });
  change(c);
  return c;
}

function clearInstance(c: ActualLRP): void {
  c.cellId = "";
  c.instanceGuid = "";
  c.address = "";
  c.ports = [];
}

export interface ActualKey {
  processGuid: string;
  index: number;
  domain: string;
}

/** A new UNCLAIMED record: desire, scale up, a missing index or a lost cell's instance. */
export function newActual(key: ActualKey, now: bigint, epoch: string): ActualLRP {
  return create(ActualLRPSchema, {
    processGuid: key.processGuid,
    index: key.index,
    domain: key.domain,
    state: ActualLrpState.UNCLAIMED,
    since: now,
    modificationTag: { epoch, index: 0 },
  });
}

/** A cell allocated a container for the index: UNCLAIMED/CRASHED -> CLAIMED. */
export const claim =
  (key: InstanceKey): ActualTransition =>
  (a) => {
    if (a.state === ActualLrpState.CLAIMED && holds(a, key)) return UNCHANGED;
    if (a.state !== ActualLrpState.UNCLAIMED && a.state !== ActualLrpState.CRASHED) {
      refuse("claim", a, `it is ${stateName(a.state)} on cell ${a.cellId}`);
    }
    // `since` is not moved by a claim (2015).
    return next(a, (c) => {
      c.state = ActualLrpState.CLAIMED;
      c.cellId = key.cellId;
      c.instanceGuid = key.instanceGuid;
      c.placementError = "";
      c.address = "";
      c.ports = [];
    });
  };

const samePorts = (a: PortMapping[], b: NetInfo["ports"]): boolean =>
  a.length === b.length && a.every((p, i) => p.containerPort === b[i]!.containerPort && p.hostPort === b[i]!.hostPort);

/**
 * The instance is up (its monitor passed): its claimer's CLAIMED, or UNCLAIMED/CRASHED -> RUNNING.
 * Unlike 2015, another instance's claim is not taken over: only the claiming cell starts it.
 */
export const start =
  (key: InstanceKey, net: NetInfo): ActualTransition =>
  (a, now) => {
    if (a.state === ActualLrpState.RUNNING) {
      if (!holds(a, key)) refuse("start", a, `it is RUNNING on cell ${a.cellId}`);
      if (a.address === net.address && samePorts(a.ports, net.ports)) return UNCHANGED;
    } else if (a.state === ActualLrpState.CLAIMED && !holds(a, key)) {
      refuse("start", a, `it is CLAIMED by cell ${a.cellId}`);
    } else if (a.state !== ActualLrpState.CLAIMED && a.state !== ActualLrpState.UNCLAIMED && a.state !== ActualLrpState.CRASHED) {
      refuse("start", a);
    }
    if (net.address === "") refuse("start", a, "no address");
    return next(a, (c) => {
      c.state = ActualLrpState.RUNNING;
      c.cellId = key.cellId;
      c.instanceGuid = key.instanceGuid;
      c.address = net.address;
      c.ports = net.ports.map((p) => create(PortMappingSchema, p));
      c.placementError = "";
      c.since = now;
    });
  };

/**
 * The instance's container ended without being told to stop: CLAIMED/RUNNING of this instance
 * -> UNCLAIMED when the policy restarts it at once (crashes 1, 2), else CRASHED (reference 4.3).
 */
export const crash =
  (key: InstanceKey, reason: string, policy: CrashPolicy = DEFAULT_CRASH_POLICY): ActualTransition =>
  (a, now) => {
    if (a.state !== ActualLrpState.CLAIMED && a.state !== ActualLrpState.RUNNING) refuse("crash", a);
    if (!holds(a, key)) refuse("crash", a, `it is held by instance ${a.instanceGuid} on cell ${a.cellId}`);
    const count = nextCrashCount(a.crashCount, a.state === ActualLrpState.RUNNING, a.since, now, policy);
    return next(a, (c) => {
      c.state = restartsImmediately(count, policy) ? ActualLrpState.UNCLAIMED : ActualLrpState.CRASHED;
      c.crashCount = count;
      // Cut like a task's failure reason (4 KiB): a record must stay within NATS's max_payload.
      c.crashReason = capFailureReason(reason);
      c.placementError = "";
      c.since = now;
      clearInstance(c);
    });
  };

/** No cell could take the instance: UNCLAIMED -> UNCLAIMED with placement_error. */
export const failPlacement =
  (error: string): ActualTransition =>
  (a, now) => {
    if (a.state !== ActualLrpState.UNCLAIMED) refuse("fail", a);
    if (error === "") refuse("fail", a, "no placement error given");
    if (a.placementError === capFailureReason(error)) return UNCHANGED;
    return next(a, (c) => {
      c.placementError = capFailureReason(error);
      c.since = now;
    });
  };

/**
 * Back to the auction: CRASHED whose backoff is over (convergence), or CLAIMED given back by the
 * cell holding it (`key`). UNCLAIMED already is.
 */
export const unclaim =
  (key?: InstanceKey): ActualTransition =>
  (a, now) => {
    if (a.state === ActualLrpState.UNCLAIMED) return UNCHANGED;
    const ok = a.state === ActualLrpState.CRASHED || (a.state === ActualLrpState.CLAIMED && key !== undefined && holds(a, key));
    if (!ok) refuse("unclaim", a);
    return next(a, (c) => {
      c.state = ActualLrpState.UNCLAIMED;
      c.since = now;
      clearInstance(c);
    });
  };

/**
 * A draining cell hands its instance back: CLAIMED/RUNNING of this instance -> UNCLAIMED (the
 * RUNNING one keeps serving as an evacuating copy, see evacuatingCopy).
 */
export const evacuate =
  (key: InstanceKey): ActualTransition =>
  (a, now) => {
    if (a.state !== ActualLrpState.CLAIMED && a.state !== ActualLrpState.RUNNING) refuse("evacuate", a);
    if (!holds(a, key)) refuse("evacuate", a, `it is held by instance ${a.instanceGuid} on cell ${a.cellId}`);
    return next(a, (c) => {
      c.state = ActualLrpState.UNCLAIMED;
      c.since = now;
      clearInstance(c);
    });
  };

/** The RUNNING instance as it keeps serving while it evacuates: a record of its own, new epoch. */
export function evacuatingCopy(a: ActualLRP, now: bigint, epoch: string): ActualLRP {
  const c = clone(ActualLRPSchema, a);
  c.evacuating = true;
  c.since = now;
  c.modificationTag = create(ModificationTagSchema, { epoch, index: 0 });
  return c;
}

/** Deletes the record; with `key`, only while that instance holds it (a cell removing its own). */
export const remove =
  (key?: InstanceKey): ActualTransition =>
  (a) => {
    if (key && !holds(a, key)) refuse("remove", a, `it is held by instance ${a.instanceGuid || "(none)"}`);
    return REMOVE;
  };

/** What retiring an instance takes: UNCLAIMED/CRASHED are deleted, others stopped by their cell. */
export type RetirePlan = { kind: "remove" } | { kind: "stop"; cellId: string; instanceGuid: string };

export function retirePlan(a: ActualLRP): RetirePlan {
  if (a.state === ActualLrpState.CLAIMED || a.state === ActualLrpState.RUNNING) {
    return { kind: "stop", cellId: a.cellId, instanceGuid: a.instanceGuid };
  }
  return { kind: "remove" };
}

/**
 * The model's rules for a stored record (2015 ActualLRP.Validate): problems, empty when valid.
 * Every transition's result satisfies them (test/model/lrp-transitions.test.ts).
 */
export function actualProblems(a: ActualLRP): string[] {
  const p: string[] = [];
  const hasKey = a.cellId !== "" && a.instanceGuid !== "";
  const hasNoKey = a.cellId === "" && a.instanceGuid === "";
  const hasNet = a.address !== "" || a.ports.length > 0;
  if (a.processGuid === "") p.push("process_guid");
  if (a.domain === "") p.push("domain");
  if (a.index < 0) p.push("index");
  if (a.since === 0n) p.push("since");
  switch (a.state) {
    case ActualLrpState.UNCLAIMED:
      if (!hasNoKey || hasNet) p.push("UNCLAIMED with an instance or net info");
      break;
    case ActualLrpState.CLAIMED:
      if (!hasKey || hasNet || a.placementError !== "") p.push("CLAIMED without instance, or with net info or placement error");
      break;
    case ActualLrpState.RUNNING:
      if (!hasKey || a.address === "" || a.placementError !== "") p.push("RUNNING without instance or address, or with placement error");
      break;
    case ActualLrpState.CRASHED:
      if (!hasNoKey || hasNet || a.placementError !== "") p.push("CRASHED with instance, net info or placement error");
      break;
    default:
      p.push("state");
  }
  return p;
}
