import { createHash } from "node:crypto";

// Every NATS subject and bucket name in one place, so the wire layout is readable at a glance.

export const TASKS_BUCKET = "diego_tasks";
export const CELLS_BUCKET = "diego_cells";
export const LOCKS_BUCKET = "diego_locks";
/** DesiredLRPs by process_guid. */
export const DESIRED_LRPS_BUCKET = "diego_desired_lrps";
/** ActualLRPs: `<process_guid>.<index>`, and `<process_guid>.<index>.evacuating` for a draining cell's copy. */
export const ACTUAL_LRPS_BUCKET = "diego_actual_lrps";
/** Domain freshness records, by subjectToken(domain). */
export const DOMAINS_BUCKET = "diego_domains";

export const subjects = {
  /** Request, many replies: the auctioneer asks every cell for its state (its bid). */
  auctionBids: "diego.auction.bids",
  /** Request/reply: the auctioneer hands a cell the tasks it won. */
  cellWork: (cellId: string) => `diego.cell.${cellId}.work`,
  /**
   * Request/reply, JSON: the converger asks a cell which of some tasks it holds
   * (`{"tasks": [...]}` -> `{"session_id": "...", "held": [...]}`).
   */
  cellHeld: (cellId: string) => `diego.cell.${cellId}.held`,
  /** Publish: stop a task's container now (it was cancelled). */
  cellCancel: (cellId: string) => `diego.cell.${cellId}.cancel`,
  /** Publish: one log line of a task's process. */
  logs: (logGuid: string) => `diego.logs.${logGuid}`,
  /** Publish: wake the auctioneer up (a task became PENDING). */
  auctionKick: "diego.auction.kick",
  /**
   * Publish, JSON `{"process_guid", "index", "instance_guid"}`: stop this LRP instance (killed,
   * scaled down, deleted, extra); the cell stops its container, then removes the record.
   */
  lrpStop: (cellId: string) => `diego.cell.${cellId}.lrp.stop`,
  /** Publish: wake the dispatchers up (a task with a callback completed). */
  dispatchKick: "diego.dispatch.kick",
};

const MAX_TOKEN_LENGTH = 128;

/**
 * NATS subject tokens cannot hold "." "*" ">" or spaces, and a subject longer than the server's
 * control line (4 KiB) drops the connection; log guids are user input, so long ones are hashed.
 */
export function subjectToken(value: string): string {
  const token = /^[A-Za-z0-9_-]+$/.test(value) ? value : Buffer.from(value).toString("base64url") || "_";
  if (token.length <= MAX_TOKEN_LENGTH) return token;
  return `sha256-${createHash("sha256").update(value).digest("base64url")}`;
}
