import { create, toBinary } from "@bufbuild/protobuf";
import pino from "pino";
import { startAuctioneer, type AuctionStats } from "../src/auction/index.js";
import { CellPresenceSchema, ResourcesSchema } from "../src/gen/diego/v1/cell_pb.js";
import { TaskCreateRequestSchema } from "../src/gen/diego/v1/task_pb.js";
import { WorkResponseSchema } from "../src/gen/diego/v1/internal_pb.js";
import { connectNats, openCellsBucket, openTasksBucket, subjects } from "../src/nats/index.js";
import { createCellRegistry, createTaskStore, nowNanos } from "../src/store/index.js";

// Placements per second of the auctioneer against simulated cells: bidders on NATS that answer
// the auction and accept work, with no containers behind them.

export interface AuctionBenchResult {
  cells: number;
  tasks: number;
  seconds: number;
  placementsPerSecond: number;
  auctions: number;
}

export async function benchAuction(natsUrl: string, cellCount: number, taskCount: number): Promise<AuctionBenchResult> {
  const cellTtlMs = 60_000;
  const nc = await connectNats({ url: natsUrl, name: "bench-cells" });
  const registry = await createCellRegistry(await openCellsBucket(nc, cellTtlMs), cellTtlMs);
  await openTasksBucket(nc); // creates the bucket on first use
  const store = createTaskStore(nc);
  const total = create(ResourcesSchema, { memoryMb: 65536, diskMb: 262144, containers: 1000 });
  const presences = Array.from({ length: cellCount }, (_, i) =>
    create(CellPresenceSchema, {
      cellId: `sim-${i}`,
      sessionId: `s-${i}`,
      stacks: ["lucid64"],
      rootfsSchemes: ["docker"],
      zone: "z1",
      capacity: total,
      available: total,
      heartbeatAt: nowNanos(),
    }),
  );
  const accepted = toBinary(WorkResponseSchema, create(WorkResponseSchema, { rejected: [] }));
  for (const p of presences) {
    const bid = toBinary(CellPresenceSchema, p);
    nc.subscribe(subjects.auctionBids, { callback: (_e, m) => void m.respond(bid) });
    nc.subscribe(subjects.cellWork(p.cellId), { callback: (_e, m) => void m.respond(accepted) });
  }
  await Promise.all(presences.map((p) => registry.announce(p)));
  await nc.flush();

  // Tasks exist before the auctioneer starts, so creation is not part of the measurement.
  const guids = Array.from({ length: taskCount }, (_, i) => `bench-auction-${Date.now()}-${i}`);
  for (let i = 0; i < guids.length; i += 500) {
    await Promise.all(
      guids.slice(i, i + 500).map((g) =>
        store.create(
          create(TaskCreateRequestSchema, {
            taskGuid: g,
            domain: "bench",
            stack: "lucid64",
            memoryMb: 16,
            diskMb: 16,
            action: { action: { case: "run", value: { path: "/bin/true" } } },
          }),
        ),
      ),
    );
  }

  let placed = 0;
  let auctions = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const started = performance.now();
  const auctioneer = await startAuctioneer({
    natsUrl,
    logger: pino({ level: "silent" }),
    cellTtlMs,
    lockTtlMs: 6000,
    maxPlacementAttempts: 3,
    retryDelayMs: 1000,
    bidTimeoutMs: 2000,
    onAuction: (s: AuctionStats) => {
      auctions++;
      placed += s.placed;
      if (placed >= taskCount) done();
    },
  });
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await auctioneer.stop();
  registry.stop();
  await nc.drain();
  return { cells: cellCount, tasks: taskCount, seconds, placementsPerSecond: taskCount / seconds, auctions };
}
