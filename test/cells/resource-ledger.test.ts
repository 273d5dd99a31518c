import { describe, expect, it } from "vitest";
import { createResourceLedger } from "../../cell-agent/src/capacity/resource-ledger.js";

// A stopped container gives its memory and slot back at once; its disk only once its filesystem
// is gone. Holding the slot through the (seconds-long) removal starved the auction.
describe("cell resource ledger", () => {
  it("frees memory and the slot when the container stops, the disk when it is removed", () => {
    const ledger = createResourceLedger({ memoryMb: 1024, diskMb: 1000, containers: 2 });
    expect(ledger.reserve("a", 512, 600)).toBe(true);
    expect(ledger.reserve("b", 512, 300)).toBe(true);
    expect(ledger.reserve("c", 1, 1)).toBe(false); // no slot left

    ledger.releaseStopped("a");
    expect(ledger.available()).toEqual({ memoryMb: 512, diskMb: 100, containers: 1 });
    expect(ledger.taskCount()).toBe(1);
    // The slot is back, but not a's disk: a task needing it must wait for the removal.
    expect(ledger.reserve("c", 256, 200)).toBe(false);
    expect(ledger.reserve("c", 256, 100)).toBe(true);

    ledger.releaseStopped("a"); // twice: no double credit
    ledger.release("a");
    ledger.release("a");
    expect(ledger.available()).toEqual({ memoryMb: 256, diskMb: 600, containers: 0 });

    ledger.release("b"); // never reported stopped (e.g. the stop failed): everything comes back
    ledger.release("c");
    expect(ledger.available()).toEqual({ memoryMb: 1024, diskMb: 1000, containers: 2 });
    expect(ledger.taskCount()).toBe(0);
  });
});
