import { clone } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActualLRPSchema, ActualLrpState as S, type ActualLRP } from "../../src/gen/diego/v1/lrp_pb.js";
import type { CrashPolicy } from "../../src/model/lrp-crash-policy.js";
import * as T from "../../src/model/lrp-transitions.js";

// The ActualLRP state machine (reference 3.2), one row per (state, operation): the state it
// leads to, or 2015's refusal. Every record a transition makes keeps the model's rules
// (actualProblems), the epoch, and raises the tag's index by one.

const T0 = 1_700_000_000_000_000_000n;
const NOW = T0 + 10_000_000_000n; // 10 s later
const A: T.InstanceKey = { cellId: "cell-a", instanceGuid: "ig-a" };
const B: T.InstanceKey = { cellId: "cell-b", instanceGuid: "ig-b" };
const NET: T.NetInfo = { address: "10.0.0.5", ports: [{ containerPort: 8080, hostPort: 61001 }] };
const policy: CrashPolicy = { immediateRestarts: 3, minBackoffMs: 30_000, maxBackoffMs: 960_000, maxRestarts: 200, resetAfterMs: 5_000 };

const apply = (a: ActualLRP, t: T.ActualTransition, now = T0): ActualLRP => {
  const r = t(a, now);
  if (r === T.UNCHANGED || r === T.REMOVE) throw new Error("expected a record");
  return r;
};
const with_ = (a: ActualLRP, change: Partial<ActualLRP>): ActualLRP => Object.assign(clone(ActualLRPSchema, a), change);

const unclaimed = T.newActual({ processGuid: "p", index: 0, domain: "d" }, T0, "epoch-1");
const claimedA = apply(unclaimed, T.claim(A));
const runningA = apply(claimedA, T.start(A, NET));
const crashed = with_(apply(runningA, T.crash(A, "boom", { ...policy, immediateRestarts: 0 })), { crashCount: 3 });
const placementFailed = apply(unclaimed, T.failPlacement("insufficient resources"));

const states: Record<string, ActualLRP> = { UNCLAIMED: unclaimed, "UNCLAIMED (placement error)": placementFailed, "CLAIMED by a": claimedA, "RUNNING on a": runningA, CRASHED: crashed };

type Expect = S | "unchanged" | "remove" | RegExp;
const rows: Array<[string, string, T.ActualTransition, Expect]> = [
  ["UNCLAIMED", "claim(a)", T.claim(A), S.CLAIMED],
  ["UNCLAIMED (placement error)", "claim(a)", T.claim(A), S.CLAIMED],
  ["CRASHED", "claim(a)", T.claim(A), S.CLAIMED],
  ["CLAIMED by a", "claim(a)", T.claim(A), "unchanged"],
  ["CLAIMED by a", "claim(b)", T.claim(B), /^cannot claim actual LRP: it is CLAIMED on cell cell-a$/],
  ["RUNNING on a", "claim(a)", T.claim(A), /cannot claim actual LRP/],
  ["RUNNING on a", "claim(b)", T.claim(B), /cannot claim actual LRP/],

  ["CLAIMED by a", "start(a)", T.start(A, NET), S.RUNNING],
  ["CLAIMED by a", "start(b)", T.start(B, NET), /^cannot start actual LRP: it is CLAIMED by cell cell-a$/],
  ["UNCLAIMED", "start(a)", T.start(A, NET), S.RUNNING],
  ["CRASHED", "start(a)", T.start(A, NET), S.RUNNING],
  ["RUNNING on a", "start(a), same address", T.start(A, NET), "unchanged"],
  ["RUNNING on a", "start(a), new port", T.start(A, { address: NET.address, ports: [{ containerPort: 8080, hostPort: 61002 }] }), S.RUNNING],
  ["RUNNING on a", "start(b)", T.start(B, NET), /cannot start actual LRP: it is RUNNING on cell cell-a/],
  ["CLAIMED by a", "start(a) without an address", T.start(A, { address: "", ports: [] }), /cannot start actual LRP: no address/],

  ["RUNNING on a", "crash(a)", T.crash(A, "Exited with status 17", policy), S.UNCLAIMED],
  ["CLAIMED by a", "crash(a)", T.crash(A, "failed to initialize container", policy), S.UNCLAIMED],
  ["RUNNING on a", "crash(b)", T.crash(B, "x", policy), /cannot crash actual LRP: it is held by instance ig-a on cell cell-a/],
  ["UNCLAIMED", "crash(a)", T.crash(A, "x", policy), /^cannot crash actual LRP: it is UNCLAIMED$/],
  ["CRASHED", "crash(a)", T.crash(A, "x", policy), /cannot crash actual LRP/],

  ["UNCLAIMED", "failPlacement", T.failPlacement("found no compatible cell"), S.UNCLAIMED],
  ["UNCLAIMED (placement error)", "failPlacement, same error", T.failPlacement("insufficient resources"), "unchanged"],
  ["UNCLAIMED", "failPlacement without a message", T.failPlacement(""), /cannot fail actual LRP: no placement error given/],
  ["CLAIMED by a", "failPlacement", T.failPlacement("x"), /cannot fail actual LRP/],
  ["CRASHED", "failPlacement", T.failPlacement("x"), /cannot fail actual LRP/],

  ["CRASHED", "unclaim", T.unclaim(), S.UNCLAIMED],
  ["UNCLAIMED", "unclaim", T.unclaim(), "unchanged"],
  ["CLAIMED by a", "unclaim(a)", T.unclaim(A), S.UNCLAIMED],
  ["CLAIMED by a", "unclaim()", T.unclaim(), /cannot unclaim actual LRP/],
  ["CLAIMED by a", "unclaim(b)", T.unclaim(B), /cannot unclaim actual LRP/],
  ["RUNNING on a", "unclaim(a)", T.unclaim(A), /cannot unclaim actual LRP/],

  ["RUNNING on a", "evacuate(a)", T.evacuate(A), S.UNCLAIMED],
  ["CLAIMED by a", "evacuate(a)", T.evacuate(A), S.UNCLAIMED],
  ["RUNNING on a", "evacuate(b)", T.evacuate(B), /cannot evacuate actual LRP/],
  ["UNCLAIMED", "evacuate(a)", T.evacuate(A), /cannot evacuate actual LRP/],
  ["CRASHED", "evacuate(a)", T.evacuate(A), /cannot evacuate actual LRP/],

  ["UNCLAIMED", "remove()", T.remove(), "remove"],
  ["CRASHED", "remove()", T.remove(), "remove"],
  ["RUNNING on a", "remove(a)", T.remove(A), "remove"],
  ["RUNNING on a", "remove(b)", T.remove(B), /cannot remove actual LRP/],
];

describe("ActualLRP transitions", () => {
  it("the starting records are valid", () => {
    for (const a of Object.values(states)) expect(T.actualProblems(a)).toEqual([]);
  });

  it.each(rows)("%s --%s--> %s", (from, _op, transition, expected) => {
    const before = states[from]!;
    const frozen = clone(ActualLRPSchema, before);
    if (expected instanceof RegExp) {
      expect(() => transition(before, NOW)).toThrow(expected);
      expect(() => transition(before, NOW)).toThrow(T.ActualLRPTransitionError);
      return;
    }
    const result = transition(before, NOW);
    if (expected === "unchanged") return expect(result).toBe(T.UNCHANGED);
    if (expected === "remove") return expect(result).toBe(T.REMOVE);
    if (result === T.UNCHANGED || result === T.REMOVE) throw new Error(`expected a record, got ${String(result)}`);
    expect(T.stateName(result.state)).toBe(T.stateName(expected));
    expect(T.actualProblems(result)).toEqual([]);
    expect(result.modificationTag).toEqual(expect.objectContaining({ epoch: "epoch-1", index: before.modificationTag!.index + 1 }));
    // The record read is never changed in place (it may be the one a retry re-judges).
    expect(before).toEqual(frozen);
  });
});

describe("what each transition writes", () => {
  it("a claim sets the instance, clears a placement error, and does not move since", () => {
    const c = apply(placementFailed, T.claim(A), NOW);
    expect(c).toMatchObject({ cellId: "cell-a", instanceGuid: "ig-a", placementError: "", since: placementFailed.since });
  });

  it("a start sets address and ports in order and since = now", () => {
    const r = apply(claimedA, T.start(A, NET), NOW);
    expect(r).toMatchObject({ address: "10.0.0.5", since: NOW, ports: [expect.objectContaining({ containerPort: 8080, hostPort: 61001 })] });
  });

  it.each([
    // [count before, state, ms RUNNING, count after, state after]
    [0, S.RUNNING, 1_000, 1, S.UNCLAIMED],
    [1, S.RUNNING, 1_000, 2, S.UNCLAIMED],
    [2, S.RUNNING, 1_000, 3, S.CRASHED],
    [4, S.RUNNING, 1_000, 5, S.CRASHED],
    [4, S.RUNNING, 5_001, 1, S.UNCLAIMED], // RUNNING longer than the reset window
    [4, S.CLAIMED, 60_000, 5, S.CRASHED], // the reset is for RUNNING only
  ])("a crash with count %i from %s after %i ms makes count %i, %s", (count, state, ms, after, stateAfter) => {
    const from = with_(state === S.RUNNING ? runningA : claimedA, { crashCount: count, since: T0 });
    const r = apply(from, T.crash(A, "Exited with status 17", policy), T0 + BigInt(ms) * 1_000_000n);
    expect([r.crashCount, T.stateName(r.state)]).toEqual([after, T.stateName(stateAfter)]);
    expect(r).toMatchObject({ crashReason: "Exited with status 17", cellId: "", instanceGuid: "", address: "", ports: [], since: T0 + BigInt(ms) * 1_000_000n });
  });

  it("a very long crash reason is cut to 4 KiB", () => {
    const r = apply(runningA, T.crash(A, "x".repeat(100_000), policy), NOW);
    expect(Buffer.byteLength(r.crashReason)).toBeLessThanOrEqual(4096);
    expect(r.crashReason.startsWith("xxxx")).toBe(true);
  });

  it("a crash with no reason (exit 0) keeps an empty crash_reason", () => {
    expect(apply(runningA, T.crash(A, "", policy), NOW).crashReason).toBe("");
  });

  it("retiring removes idle instances and asks the cell to stop held ones", () => {
    expect(T.retirePlan(unclaimed)).toEqual({ kind: "remove" });
    expect(T.retirePlan(crashed)).toEqual({ kind: "remove" });
    expect(T.retirePlan(claimedA)).toEqual({ kind: "stop", cellId: "cell-a", instanceGuid: "ig-a" });
    expect(T.retirePlan(runningA)).toEqual({ kind: "stop", cellId: "cell-a", instanceGuid: "ig-a" });
  });

  it("an evacuating copy is the RUNNING instance as it was, flagged, a record of its own", () => {
    const e = T.evacuatingCopy(runningA, NOW, "epoch-2");
    expect(e).toMatchObject({ state: S.RUNNING, evacuating: true, cellId: "cell-a", address: "10.0.0.5", since: NOW, modificationTag: expect.objectContaining({ epoch: "epoch-2", index: 0 }) });
    expect(runningA.evacuating).toBe(false);
  });

  it("a new record is UNCLAIMED with count 0, its own epoch and index 0", () => {
    expect(unclaimed).toMatchObject({ state: S.UNCLAIMED, crashCount: 0, since: T0, modificationTag: expect.objectContaining({ epoch: "epoch-1", index: 0 }) });
  });

  it("the model's rules name a broken record", () => {
    expect(T.actualProblems(with_(runningA, { address: "" }))).toEqual(["RUNNING without instance or address, or with placement error"]);
    expect(T.actualProblems(with_(unclaimed, { cellId: "x", since: 0n }))).toEqual(["since", "UNCLAIMED with an instance or net info"]);
  });
});
