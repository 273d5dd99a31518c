import { create, toBinary } from "@bufbuild/protobuf";
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { CellPresenceSchema, type CellPresence } from "../gen/diego/v1/cell_pb.js";
import { decoderFor } from "../model/index.js";
import { CellStateRequestSchema } from "../gen/diego/v1/internal_pb.js";
import { subjects } from "../nats/index.js";
import type { CellBid } from "../model/index.js";

// Compiled: 1,000 cells answer every auction.
const decodePresence = decoderFor<CellPresence>(CellPresenceSchema);

/**
 * Asks every cell for its current state with one request and many replies; returns when all
 * expected cells answered or the timeout passed. A cell that does not answer gets no work.
 * With many cells, a few stragglers (a busy cell) do not hold the auction up to the timeout:
 * once all but one in STRAGGLER_SHARE have answered, STRAGGLER_WAIT_MS without a further answer
 * ends it (those cells are bid as full, see silentBids).
 */
export async function gatherBids(
  nc: NatsConnection,
  auctionId: string,
  expectedCells: number,
  timeoutMs: number,
): Promise<CellBid[]> {
  if (expectedCells === 0) return [];
  const enough = expectedCells - Math.floor(expectedCells / STRAGGLER_SHARE);
  const bids: CellBid[] = [];
  return new Promise<CellBid[]>((resolve) => {
    let stall: NodeJS.Timeout | undefined;
    const inbox = createInbox();
    const finish = (): void => {
      clearTimeout(deadline);
      clearTimeout(stall);
      sub.unsubscribe();
      resolve(bids);
    };
    const deadline = setTimeout(finish, timeoutMs);
    const sub = nc.subscribe(inbox, {
      callback: (_err, m) => {
        try {
          bids.push(bidFromPresence(decodePresence(m.data)));
        } catch {
          return; // not a cell's answer
        }
        if (bids.length >= expectedCells) return finish();
        if (bids.length >= enough) {
          clearTimeout(stall);
          stall = setTimeout(finish, STRAGGLER_WAIT_MS);
        }
      },
    });
    nc.publish(subjects.auctionBids, toBinary(CellStateRequestSchema, create(CellStateRequestSchema, { auctionId })), { reply: inbox });
  });
}

/** One cell in this many may be a straggler (so below 20 cells, every one is waited for). */
const STRAGGLER_SHARE = 20;
const STRAGGLER_WAIT_MS = 50;

export function bidFromPresence(p: CellPresence): CellBid {
  return {
    cellId: p.cellId,
    stacks: p.stacks,
    rootfsSchemes: p.rootfsSchemes,
    total: { memoryMb: p.capacity?.memoryMb ?? 0, diskMb: p.capacity?.diskMb ?? 0, containers: p.capacity?.containers ?? 0 },
    available: { memoryMb: p.available?.memoryMb ?? 0, diskMb: p.available?.diskMb ?? 0, containers: p.available?.containers ?? 0 },
    taskCount: p.taskCount,
    zone: p.zone,
    evacuating: p.evacuating,
    lrpInstances: Object.fromEntries(p.lrpInstances.map((c) => [c.processGuid, c.count])),
  };
}

/**
 * The registered cells that did not answer this auction (busy, or slow under load), as bids with
 * no room: nothing is placed on them, but a task only they can run waits for the next auction
 * instead of failing with "found no compatible cell".
 */
export function silentBids(registered: CellPresence[], bids: CellBid[]): CellBid[] {
  const heard = new Set(bids.map((b) => b.cellId));
  return registered
    .filter((p) => !heard.has(p.cellId))
    .map((p) => ({ ...bidFromPresence(p), available: { memoryMb: 0, diskMb: 0, containers: 0 } }));
}
