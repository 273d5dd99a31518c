import { MAX_LRP_INSTANCES } from "./validate-lrp.js";

// The `:index` of /v1/actual_lrps/:process_guid/index/:index. 2015 answered 400 for a missing
// or non-numeric index and 500 for a negative one; every bad index is a 400 InvalidRequest here.

export type ParsedIndex = { index: number } | { problem: string };

export function parseActualIndex(raw: string | undefined): ParsedIndex {
  if (raw === undefined || raw === "") return { problem: "index missing from request" };
  if (!/^-?[0-9]+$/.test(raw)) return { problem: "index not a number" };
  const index = Number(raw);
  // No instance can have an index at or beyond the instance cap.
  if (index < 0 || index >= MAX_LRP_INSTANCES) return { problem: "Invalid field: index" };
  return { index };
}
