import type { WatchLRPsResponse } from "../gen/diego/v1/lrp_pb.js";
import type { LrpWatch } from "../store/index.js";
import type { RouteTable, TableChange } from "./route-table.js";

// Feeds the route table from the LRP watch. Events are applied as they come; each carries the
// record after the change, so applying it is idempotent and the two buckets' streams may
// interleave in any order.

export function applyLrpEvent(table: RouteTable, e: WatchLRPsResponse): TableChange | undefined {
  const v = e.event;
  switch (v.case) {
    case "desiredLrpCreated":
      return v.value.desiredLrp && table.setDesired(v.value.desiredLrp);
    case "desiredLrpChanged":
      return v.value.desiredLrpAfter && table.setDesired(v.value.desiredLrpAfter);
    case "desiredLrpRemoved":
      return v.value.desiredLrp && table.removeDesired(v.value.desiredLrp.processGuid);
    case "actualLrpCreated":
      return v.value.actualLrp && table.setActual(v.value.actualLrp);
    case "actualLrpChanged":
      return v.value.actualLrpAfter && table.setActual(v.value.actualLrpAfter);
    case "actualLrpRemoved":
      return v.value.actualLrp && table.removeActual(v.value.actualLrp);
    default:
      return undefined;
  }
}

/** Follows the watch from now on; resolves once the records present at the start are in. */
export async function feedRouteTable(watch: LrpWatch, table: RouteTable, onChange: (c: TableChange) => void): Promise<() => void> {
  // Subscribed before the load: an event during it carries a record at least as new as the
  // loaded one, and applying either again changes nothing.
  const off = watch.onEvent((e) => {
    const c = applyLrpEvent(table, e);
    if (c) onChange(c);
  });
  await watch.ready();
  for (const d of watch.desired()) onChange(table.setDesired(d));
  for (const a of watch.actuals()) onChange(table.setActual(a));
  return off;
}
