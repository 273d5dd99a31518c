import type { Room } from "../../../src/model/index.js";

// What the cell has promised: each claimed task holds its memory, disk and one container slot
// until its container is gone. The cell's bids and heartbeats advertise total minus held.
// Memory and the slot come back once the container is stopped; the disk once its filesystem is
// removed too (that takes seconds, many times a short task's run: holding the slot for it
// starved the auction).

export interface ResourceLedger {
  readonly total: Room;
  /** Holds room for a task; false when it does not fit. */
  reserve(taskGuid: string, memoryMb: number, diskMb: number): boolean;
  release(taskGuid: string): void;
  /** The task's container is stopped: frees its memory and container slot, keeps its disk. */
  releaseStopped(taskGuid: string): void;
  available(): Room;
  taskCount(): number;
}

export function createResourceLedger(total: Room): ResourceLedger {
  const held = new Map<string, { memoryMb: number; diskMb: number; stopped: boolean }>();
  const used: Room = { memoryMb: 0, diskMb: 0, containers: 0 };
  const available = (): Room => ({
    memoryMb: total.memoryMb - used.memoryMb,
    diskMb: total.diskMb - used.diskMb,
    containers: total.containers - used.containers,
  });
  return {
    total,
    reserve(guid, memoryMb, diskMb) {
      if (held.has(guid)) return true;
      const a = available();
      if (a.memoryMb < memoryMb || a.diskMb < diskMb || a.containers < 1) return false;
      held.set(guid, { memoryMb, diskMb, stopped: false });
      used.memoryMb += memoryMb;
      used.diskMb += diskMb;
      used.containers += 1;
      return true;
    },
    release(guid) {
      const h = held.get(guid);
      if (!h) return;
      held.delete(guid);
      if (!h.stopped) {
        used.memoryMb -= h.memoryMb;
        used.containers -= 1;
      }
      used.diskMb -= h.diskMb;
    },
    releaseStopped(guid) {
      const h = held.get(guid);
      if (!h || h.stopped) return;
      h.stopped = true;
      used.memoryMb -= h.memoryMb;
      used.containers -= 1;
    },
    available,
    taskCount: () => [...held.values()].filter((h) => !h.stopped).length,
  };
}
