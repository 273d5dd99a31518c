import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { nextDueAt } from "../../src/converger/index.js";
import { DEFAULT_LRP_CONVERGE_SETTINGS } from "../../src/converger/lrp-decide.js";
import { ActualLRPSchema, ActualLrpState as S, type ActualLRP } from "../../src/gen/diego/v1/lrp_pb.js";

// When the converger's due timer next runs a pass for LRPs' own sake: the soonest crash backoff
// end, UNCLAIMED record turning stale or evacuating copy expiring, never a moment already past.

const MS = 1_000_000n;
const NOW = 1_700_000_000_000n * MS;
const s = DEFAULT_LRP_CONVERGE_SETTINGS; // backoff 30 s from the third crash, stale after 30 s, evacuation 10 min

const rec = (state: S, sinceMsAgo: number, more: Partial<Pick<ActualLRP, "crashCount" | "evacuating">> = {}): ActualLRP =>
  create(ActualLRPSchema, { processGuid: "p", index: 0, state, since: NOW - BigInt(sinceMsAgo) * MS, ...more });

describe("nextDueAt", () => {
  const cases: Array<[string, ActualLRP[], ActualLRP[], bigint | undefined]> = [
    ["nothing pending", [rec(S.RUNNING, 0), rec(S.CLAIMED, 0)], [], undefined],
    ["a third crash 10 s ago: 20 s from now", [rec(S.CRASHED, 10_000, { crashCount: 3 })], [], NOW + 20_000n * MS],
    ["a fourth crash (60 s backoff) 10 s ago: 50 s from now", [rec(S.CRASHED, 10_000, { crashCount: 4 })], [], NOW + 50_000n * MS],
    ["a crash given up on: never", [rec(S.CRASHED, 0, { crashCount: 200 })], [], undefined],
    ["an UNCLAIMED record 5 s old: stale just past 25 s from now", [rec(S.UNCLAIMED, 5_000)], [], NOW + 25_000n * MS + 1n],
    ["an UNCLAIMED record already stale: left to the interval", [rec(S.UNCLAIMED, 31_000)], [], undefined],
    ["an evacuating copy 9 min old: just past 1 min from now", [], [rec(S.RUNNING, 540_000, { evacuating: true })], NOW + 60_000n * MS + 1n],
    ["the soonest of several", [rec(S.UNCLAIMED, 5_000), rec(S.CRASHED, 25_000, { crashCount: 3 })], [rec(S.RUNNING, 0, { evacuating: true })], NOW + 5_000n * MS],
  ];
  it.each(cases)("%s", (_name, actuals, evacuating, want) => {
    expect(nextDueAt(actuals, evacuating, s, NOW)).toBe(want);
  });
});
