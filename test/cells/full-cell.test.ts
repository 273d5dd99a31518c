import { afterAll, beforeAll, describe, expect, it } from "vitest";
import PQueue from "p-queue";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";

// A full cell: many more trivial tasks than it may start at once. 120 tasks, not the issue's
// 1,000: on the shared 2-core CI machine a cell with two start slots drained 3-5 a second under
// the load of other test files (150 took 45 s at a load of 10), so 1,000 would take minutes;
// 120 keep the queue full for 25-40 s, which is what the test is about (`npm run bench:load`
// drains 1,000 through `diego up`).
const TASKS = 120;
const MAX_STARTING = 2;

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster({ cells: [{ runtime: "crun", maxStarting: MAX_STARTING, containers: 256 }] });
});
afterAll(async () => {
  await cluster?.stop();
});

describe("a cell with more work than it can start at once", () => {
  it(`runs ${TASKS} queued tasks, never more than --max-starting starting at once, claiming only what it can start soon`, async () => {
    const cell = cluster.cells[0]!;
    let mostStarting = 0;
    let mostQueued = 0;
    const offStarts = cell.starts.onChange((s) => {
      mostStarting = Math.max(mostStarting, s.starting);
      mostQueued = Math.max(mostQueued, s.queued);
    });
    // CLAIMED: claimed by the cell and waiting for its container to be started.
    const claimed = new Set<string>();
    let mostClaimed = 0;
    const completed = new Set<string>();
    let allDone!: () => void;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const offIndex = cluster.index.subscribe((guid, _before, after) => {
      if (!guid.startsWith("full-")) return;
      if (after?.state === TaskState.CLAIMED) claimed.add(guid);
      else claimed.delete(guid);
      mostClaimed = Math.max(mostClaimed, claimed.size);
      if (after?.state === TaskState.COMPLETED) {
        expect(after.record.task?.failed, `${guid}: ${after.record.task?.failureReason}`).toBe(false);
        completed.add(guid);
        if (completed.size === TASKS) allDone();
      }
    });

    const submit = new PQueue({ concurrency: 16 });
    const statuses = await Promise.all(
      Array.from({ length: TASKS }, (_, i) =>
        submit.add(async () => {
          const res = await cluster.createTask({ task_guid: `full-${i}`, domain: "full-cell", stack: "lucid64", action: { run: { path: "/bin/true" } } });
          return res.status;
        }),
      ),
    );
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    // Declined work stays PENDING for the next auction (here or on another cell): with every task
    // submitted, most still wait, where a cell claiming all it had slots for would hold them all.
    const pendingAfterSubmit = cluster.index.list().filter((t) => t.guid.startsWith("full-") && t.state === TaskState.PENDING).length;
    await done;
    offStarts();
    offIndex();

    expect(completed.size).toBe(TASKS);
    // The bound held, and was reached: the queue was in use.
    expect(mostStarting).toBe(MAX_STARTING);
    expect(cell.starts.peak()).toBe(MAX_STARTING);
    expect(mostQueued).toBeGreaterThan(0);
    // It claimed no more than the bound plus as many queued; the rest stayed PENDING meanwhile.
    expect(mostClaimed).toBeLessThanOrEqual(MAX_STARTING * 2);
    expect(pendingAfterSubmit).toBeGreaterThan(TASKS / 2);
    expect(cell.starts.state()).toEqual({ starting: 0, queued: 0 });
  }, 180_000);
});
