import { create } from "@bufbuild/protobuf";
import { CellPresenceSchema, ResourcesSchema, type CellPresence } from "../../../src/gen/diego/v1/cell_pb.js";
import { nowNanos } from "../../../src/store/index.js";
import type { ResourceLedger } from "../capacity/index.js";

export interface CellIdentity {
  cellId: string;
  sessionId: string;
  stacks: string[];
  zone: string;
  rootfsSchemes: string[];
}

/** The cell's presence as of now: its heartbeat and its bid are the same message. */
export function currentPresence(id: CellIdentity, ledger: ResourceLedger): CellPresence {
  return create(CellPresenceSchema, {
    cellId: id.cellId,
    sessionId: id.sessionId,
    stacks: id.stacks,
    zone: id.zone,
    rootfsSchemes: id.rootfsSchemes,
    capacity: create(ResourcesSchema, ledger.total),
    available: create(ResourcesSchema, ledger.available()),
    taskCount: ledger.taskCount(),
    heartbeatAt: nowNanos(),
  });
}
