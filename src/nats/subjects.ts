// Every NATS subject and bucket name in one place, so the wire layout is readable at a glance.

export const TASKS_BUCKET = "diego_tasks";
export const CELLS_BUCKET = "diego_cells";
export const LOCKS_BUCKET = "diego_locks";

export const subjects = {
  /** Request/reply: the auctioneer asks one cell for its current state (its bid). */
  cellState: (cellId: string) => `diego.cell.${cellId}.state`,
  /** Request/reply: the auctioneer hands a cell the tasks it won. */
  cellWork: (cellId: string) => `diego.cell.${cellId}.work`,
  /** Publish: stop a task's container now (it was cancelled). */
  cellCancel: (cellId: string) => `diego.cell.${cellId}.cancel`,
  /** Publish: one log line of a task's process. */
  logs: (logGuid: string) => `diego.logs.${logGuid}`,
  /** Publish: wake the auctioneer up (a task became PENDING). */
  auctionKick: "diego.auction.kick",
  /** Publish: wake the dispatchers up (a task with a callback completed). */
  dispatchKick: "diego.dispatch.kick",
};

/** NATS subject tokens cannot hold "." "*" ">" or spaces; log guids are user input. */
export function subjectToken(value: string): string {
  return /^[A-Za-z0-9_-]+$/.test(value) ? value : Buffer.from(value).toString("base64url") || "_";
}
