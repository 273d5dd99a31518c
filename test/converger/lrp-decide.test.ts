import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DesiredLRPResponseSchema, ActualLRPSchema, ActualLrpState as S, type ActualLRP, type DesiredLRPResponse } from "../../src/gen/diego/v1/lrp_pb.js";
import { decideLrps, startRequests, type LrpAction, type LrpConvergeInput, type LrpConvergeSettings } from "../../src/converger/lrp-decide.js";

// One LRP convergence pass (reference 5.2-5.3) as a table: what it decides for each situation,
// and which decisions wait for a fresh domain.

const MS = 1_000_000n;
const NOW = 1_700_000_000_000_000_000n;
const settings: LrpConvergeSettings = {
  crashPolicy: { immediateRestarts: 3, minBackoffMs: 30_000, maxBackoffMs: 960_000, maxRestarts: 200, resetAfterMs: 300_000 },
  staleUnclaimedMs: 30_000,
  evacuationTimeoutMs: 600_000,
};

const desired = (guid: string, instances: number, domain = "fresh"): DesiredLRPResponse => create(DesiredLRPResponseSchema, { processGuid: guid, domain, instances });
const actual = (guid: string, index: number, state: S, more: Omit<Partial<ActualLRP>, "$typeName" | "$unknown"> = {}): ActualLRP =>
  create(ActualLRPSchema, {
    processGuid: guid,
    index,
    domain: "fresh",
    state,
    since: NOW - 1_000n * MS,
    ...(state === S.CLAIMED || state === S.RUNNING ? { cellId: "cell-1", instanceGuid: `ig-${index}` } : {}),
    ...(state === S.RUNNING ? { address: "10.0.0.1" } : {}),
    ...more,
  });

function decide(over: Partial<LrpConvergeInput>): string[] {
  const input: LrpConvergeInput = {
    desired: [],
    actuals: [],
    evacuating: [],
    cells: new Set(["cell-1"]),
    cellsTrusted: true,
    freshDomains: new Set(["fresh"]),
    now: NOW,
    settings,
    ...over,
  };
  return decideLrps(input).map(show);
}

function show(a: LrpAction): string {
  if (a.kind === "create") return `create ${a.processGuid}/${a.index}`;
  const key = `${a.actual.processGuid}/${a.actual.index}`;
  if (a.kind === "replace") return `replace ${key}${a.recreate ? "" : " (not recreated)"}`;
  return `${a.kind} ${key}`;
}

const stale = { domain: "stale" };

const cases: Array<[string, Partial<LrpConvergeInput>, string[]]> = [
  ["every index held: nothing", { desired: [desired("p", 2)], actuals: [actual("p", 0, S.RUNNING), actual("p", 1, S.CLAIMED)] }, []],
  ["missing indices are created", { desired: [desired("p", 3)], actuals: [actual("p", 1, S.RUNNING)] }, ["create p/0", "create p/2"]],
  ["missing indices are created in a stale domain too", { desired: [desired("p", 1, "stale")], actuals: [] }, ["create p/0"]],
  ["RUNNING on a lost cell is replaced", { desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING, { cellId: "gone" })] }, ["replace p/0"]],
  ["CLAIMED on a lost cell is replaced, stale domain or not", { desired: [desired("p", 1, "stale")], actuals: [actual("p", 0, S.CLAIMED, { cellId: "gone", ...stale })] }, ["replace p/0"]],
  ["a lost cell is not judged before the view of cells is trusted", { cellsTrusted: false, desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING, { cellId: "gone" })] }, []],
  ["UNCLAIMED and CRASHED have no cell to lose", { desired: [desired("p", 2)], actuals: [actual("p", 0, S.UNCLAIMED, { cellId: "" }), actual("p", 1, S.CRASHED, { crashCount: 5, since: NOW })] }, []],
  ["an extra index on a lost cell is removed, not recreated", { desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING), actual("p", 1, S.RUNNING, { cellId: "gone" })] }, ["replace p/1 (not recreated)"]],
  ["index >= instances is retired when the domain is fresh", { desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING), actual("p", 1, S.RUNNING), actual("p", 2, S.UNCLAIMED)] }, ["retire p/1", "retire p/2"]],
  ["index >= instances is kept when the domain is stale", { desired: [desired("p", 1, "stale")], actuals: [actual("p", 0, S.RUNNING, stale), actual("p", 1, S.RUNNING, stale)] }, []],
  ["an instance without a DesiredLRP is retired when its domain is fresh", { actuals: [actual("orphan", 0, S.RUNNING)] }, ["retire orphan/0"]],
  ["an instance without a DesiredLRP is kept when its domain is stale", { actuals: [actual("orphan", 0, S.RUNNING, stale)] }, []],
  ["an instance without a DesiredLRP on a lost cell is removed", { actuals: [actual("orphan", 0, S.RUNNING, { cellId: "gone", ...stale })] }, ["replace orphan/0 (not recreated)"]],
  ["CRASHED whose backoff is over is restarted", { desired: [desired("p", 1)], actuals: [actual("p", 0, S.CRASHED, { crashCount: 3, since: NOW - 30_000n * MS })] }, ["restart p/0"]],
  ["CRASHED within its backoff waits", { desired: [desired("p", 1)], actuals: [actual("p", 0, S.CRASHED, { crashCount: 4, since: NOW - 59_999n * MS })] }, []],
  ["CRASHED 200 times is never restarted", { desired: [desired("p", 1)], actuals: [actual("p", 0, S.CRASHED, { crashCount: 200, since: NOW - 10_000_000n * MS })] }, []],
  ["CRASHED in a stale domain is restarted all the same", { desired: [desired("p", 1, "stale")], actuals: [actual("p", 0, S.CRASHED, { crashCount: 3, since: NOW - 31_000n * MS, ...stale })] }, ["restart p/0"]],
  ["UNCLAIMED over 30 s is auctioned again", { desired: [desired("p", 2)], actuals: [actual("p", 0, S.UNCLAIMED, { since: NOW - 30_001n * MS }), actual("p", 1, S.UNCLAIMED, { since: NOW - 30_000n * MS })] }, ["auction p/0"]],
  ["a stale UNCLAIMED extra in a stale domain is auctioned (2015's rule order)", { desired: [desired("p", 0, "stale")], actuals: [actual("p", 0, S.UNCLAIMED, { since: NOW - 60_000n * MS, ...stale })] }, ["auction p/0"]],
  ["a lost cell comes before an extra", { desired: [desired("p", 0)], actuals: [actual("p", 0, S.RUNNING, { cellId: "gone" })] }, ["replace p/0 (not recreated)"]],
  ["an evacuating copy is kept while its cell lives and its time lasts", { evacuating: [actual("p", 0, S.RUNNING, { evacuating: true, since: NOW - 599_000n * MS })], desired: [desired("p", 1)], actuals: [actual("p", 0, S.UNCLAIMED)] }, []],
  ["an evacuating copy past the evacuation timeout is removed", { evacuating: [actual("p", 0, S.RUNNING, { evacuating: true, since: NOW - 600_001n * MS })], desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING, { cellId: "cell-1" })] }, ["remove-evacuating p/0"]],
  ["an evacuating copy is kept while its replacement is only CLAIMED", { evacuating: [actual("p", 0, S.RUNNING, { evacuating: true })], desired: [desired("p", 1)], actuals: [actual("p", 0, S.CLAIMED, { cellId: "cell-1", instanceGuid: "new" })] }, []],
  ["an evacuating copy whose replacement is RUNNING is removed", { evacuating: [actual("p", 0, S.RUNNING, { evacuating: true })], desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING, { cellId: "cell-1", instanceGuid: "new" })] }, ["remove-evacuating p/0"]],
  ["an evacuating copy on a lost cell is removed", { evacuating: [actual("p", 0, S.RUNNING, { evacuating: true, cellId: "gone" })], desired: [desired("p", 1)], actuals: [actual("p", 0, S.RUNNING)] }, ["remove-evacuating p/0"]],
  [
    "several LRPs: missing first, then the records in guid and index order",
    { desired: [desired("b", 2), desired("a", 1)], actuals: [actual("b", 1, S.RUNNING, { cellId: "gone" }), actual("a", 3, S.UNCLAIMED)] },
    ["create a/0", "create b/0", "retire a/3", "replace b/1"],
  ],
];

describe("LRP convergence decisions", () => {
  it.each(cases)("%s", (_what, input, expected) => {
    expect(decide(input)).toEqual(expected);
  });

  it("groups what goes to the auction per process guid", () => {
    const input: LrpConvergeInput = {
      desired: [desired("p", 4), desired("q", 2)],
      actuals: [
        actual("p", 1, S.RUNNING, { cellId: "gone" }),
        actual("p", 2, S.CRASHED, { crashCount: 1, since: NOW }),
        actual("p", 3, S.UNCLAIMED, { since: NOW - 31_000n * MS }),
        actual("q", 0, S.RUNNING),
        actual("q", 1, S.RUNNING),
        actual("q", 2, S.RUNNING),
      ],
      evacuating: [],
      cells: new Set(["cell-1"]),
      cellsTrusted: true,
      freshDomains: new Set(["fresh"]),
      now: NOW,
      settings,
    };
    const actions = decideLrps(input);
    expect(actions.map(show)).toEqual(["create p/0", "replace p/1", "restart p/2", "auction p/3", "retire q/2"]);
    expect([...startRequests(actions)]).toEqual([["p", [0, 1, 2, 3]]]);
  });
});
