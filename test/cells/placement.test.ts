import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogMessageSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { connectNats, subjects } from "../../src/nats/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";

// Two cells, 200 tasks: every task starts exactly once (counted from the lines the tasks print
// inside their containers), and each lands only on a cell of its stack.

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startCluster({
    cells: [
      // A start horizon (2 × --max-starting) above the slots: bids here offer every free slot.
      { cellId: "placement-a", stacks: ["lucid64"], containers: 24, maxStarting: 16 },
      { cellId: "placement-b", stacks: ["lucid64", "cflinuxfs2"], containers: 24, maxStarting: 16 },
    ],
  });
});
afterAll(async () => {
  await cluster?.stop();
});

describe("placement across two cells", () => {
  it("runs 200 tasks exactly once each, on cells of their stack", async () => {
    const logGuid = "placement-log";
    const nc = await connectNats({ url: cluster.nats.url, name: "placement-logs" });
    const starts = new Map<string, number>();
    const sub = nc.subscribe(subjects.logs(logGuid), {
      callback: (_e, m) => {
        const line = fromBinary(LogMessageSchema, m.data).message;
        const match = /^started (\S+)$/.exec(line);
        if (match) starts.set(match[1]!, (starts.get(match[1]!) ?? 0) + 1);
      },
    });
    const claimedOn = new Map<string, string>();
    const off = cluster.index.subscribe((guid, _b, after) => {
      const t = after?.record.task;
      if (t?.state === TaskState.CLAIMED) claimedOn.set(guid, t.cellId);
    });

    const guids = Array.from({ length: 200 }, (_, i) => `place-${i}`);
    const stackOf = (i: number): string => (i % 4 === 0 ? "cflinuxfs2" : "lucid64");
    const responses = await Promise.all(
      guids.map((guid, i) =>
        cluster.createTask({
          task_guid: guid,
          domain: "placement",
          stack: stackOf(i),
          memory_mb: 16,
          log_guid: logGuid,
          action: { run: { path: "/bin/sh", args: ["-c", `echo started ${guid}`] } },
        }),
      ),
    );
    expect(responses.every((r) => r.status === 201)).toBe(true);
    const done = await Promise.all(guids.map((g) => cluster.waitCompleted(g, 120_000)));
    await nc.flush();
    sub.unsubscribe();
    off();

    expect(done.filter((t) => t.failed)).toEqual([]);
    for (const g of guids) expect(starts.get(g), g).toBe(1);
    guids.forEach((g, i) => {
      if (stackOf(i) === "cflinuxfs2") expect(claimedOn.get(g), g).toBe("placement-b");
    });
    const used = new Set(claimedOn.values());
    expect(used).toEqual(new Set(["placement-a", "placement-b"]));
    await nc.drain();
  }, 180_000);

  it("advertises less room while tasks run and all of it back afterwards", async () => {
    // Containers of the previous test may still be being removed: they hold room until gone.
    await until(() => cluster.cells.every((c) => c.running().length === 0));
    const cellsBefore = (await (await fetch(`${cluster.url}/v1/cells`)).json()) as Array<{ cell_id: string; available: { memory_mb: number; containers: number }; capacity: { memory_mb: number; containers: number } }>;
    expect(cellsBefore.map((c) => c.cell_id).sort()).toEqual(["placement-a", "placement-b"]);
    const b = cellsBefore.find((c) => c.cell_id === "placement-b")!;
    await cluster.createTask({
      task_guid: "room-1",
      domain: "placement",
      stack: "cflinuxfs2",
      memory_mb: 300,
      action: { run: { path: "/bin/sleep", args: ["30"] } },
    });
    await new Promise<void>((resolve) => {
      const check = () => cluster.index.get("room-1")?.record.task?.state === TaskState.RUNNING;
      if (check()) return resolve();
      const off = cluster.index.subscribe(() => check() && (off(), resolve()));
    });
    const during = await cluster.cells.find((c) => c.cellId === "placement-b")!;
    expect(during.running()).toContain("room-1");
    // The bid a cell gives the auction is what /v1/cells shows after the next heartbeat; read the bid path directly.
    const { gatherBids } = await import("../../src/auction/index.js");
    const nc = await connectNats({ url: cluster.nats.url, name: "room-bids" });
    const bids = await gatherBids(nc, "test", 2, 2000);
    const bidB = bids.find((x) => x.cellId === "placement-b")!;
    expect(bidB.available.memoryMb).toBe(b.capacity.memory_mb - 300);
    expect(bidB.available.containers).toBe(b.capacity.containers - 1);
    await fetch(`${cluster.url}/v1/tasks/room-1/cancel`, { method: "POST" });
    await until(() => !during.running().includes("room-1"));
    const after = (await gatherBids(nc, "test", 2, 2000)).find((x) => x.cellId === "placement-b")!;
    expect(after.available.memoryMb).toBe(b.capacity.memory_mb);
    expect(after.available.containers).toBe(b.capacity.containers);
    await nc.drain();
  });
});

/** The cell exposes no event for "container removed": poll its in-memory list. */
function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (check()) return resolve();
    const timer = setInterval(() => check() && (clearInterval(timer), resolve()), 20);
  });
}
