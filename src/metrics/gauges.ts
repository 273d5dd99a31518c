import client from "prom-client";
import { TaskState } from "../gen/diego/v1/task_pb.js";

// Gauges read when scraped, from what a process already holds: the receptor's task index, the
// cell's resource ledger. Sources register and unregister; none, and the gauge shows nothing.

interface StateSource {
  list(): Iterable<{ readonly state: TaskState }>;
  /** What the index keeps in its arena (byte-arena.ts). */
  arenaStats?(): { liveBytes: number; slabBytes: number };
}

const taskSources = new Set<StateSource>();

new client.Gauge({
  name: "diego_tasks",
  help: "tasks by state, from the receptor's task index",
  labelNames: ["state"] as const,
  collect() {
    this.reset();
    if (taskSources.size === 0) return;
    // One index is the whole store; with several receptors in one process, any of them will do.
    const source = taskSources.values().next().value!;
    const counts = new Map<TaskState, number>();
    for (const t of source.list()) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
    for (const state of [TaskState.PENDING, TaskState.CLAIMED, TaskState.RUNNING, TaskState.COMPLETED, TaskState.RESOLVING]) {
      this.set({ state: TaskState[state] }, counts.get(state) ?? 0);
    }
  },
});

new client.Gauge({
  name: "diego_task_index_bytes",
  help: "bytes the receptor's task index keeps in its arena, by kind: live (stored records and their JSON) and slabs (memory held: live, garbage not yet compacted, room)",
  labelNames: ["kind"] as const,
  collect() {
    this.reset();
    const stats = taskSources.values().next().value?.arenaStats?.();
    if (!stats) return;
    this.set({ kind: "live" }, stats.liveBytes);
    this.set({ kind: "slabs" }, stats.slabBytes);
  },
});

/** Counts the index's tasks by state at each scrape; returns the unregister. */
export function registerTaskStates(source: StateSource): () => void {
  taskSources.add(source);
  return () => taskSources.delete(source);
}

interface Room {
  memoryMb: number;
  diskMb: number;
  containers: number;
}
interface Ledger {
  readonly total: Room;
  available(): Room;
}

const cells = new Map<string, Ledger>();

const resources: Array<[keyof Room, string]> = [
  ["memoryMb", "memory_mb"],
  ["diskMb", "disk_mb"],
  ["containers", "containers"],
];

new client.Gauge({
  name: "diego_cell_capacity",
  help: "what a cell offers in all, by cell and resource (memory_mb, disk_mb, containers)",
  labelNames: ["cell", "resource"] as const,
  collect() {
    this.reset();
    for (const [cell, l] of cells) for (const [k, name] of resources) this.set({ cell, resource: name }, l.total[k]);
  },
});

new client.Gauge({
  name: "diego_cell_used",
  help: "what a cell's claimed and running tasks hold, by cell and resource (memory_mb, disk_mb, containers)",
  labelNames: ["cell", "resource"] as const,
  collect() {
    this.reset();
    for (const [cell, l] of cells) {
      const a = l.available();
      for (const [k, name] of resources) this.set({ cell, resource: name }, l.total[k] - a[k]);
    }
  },
});

/** Shows a cell's capacity and use at each scrape; returns the unregister. */
export function registerCellLedger(cellId: string, ledger: Ledger): () => void {
  cells.set(cellId, ledger);
  return () => cells.delete(cellId);
}

interface StartQueueSource {
  state(): { starting: number; queued: number };
  peak(): number;
}

const startQueues = new Map<string, StartQueueSource>();

new client.Gauge({
  name: "diego_cell_containers_starting",
  help: "containers a cell is creating or starting now (at most its --max-starting), by cell",
  labelNames: ["cell"] as const,
  collect() {
    this.reset();
    for (const [cell, q] of startQueues) this.set({ cell }, q.state().starting);
  },
});

new client.Gauge({
  name: "diego_cell_containers_starting_peak",
  help: "the most containers a cell has been creating or starting at once since it started, by cell",
  labelNames: ["cell"] as const,
  collect() {
    this.reset();
    for (const [cell, q] of startQueues) this.set({ cell }, q.peak());
  },
});

new client.Gauge({
  name: "diego_cell_start_queue_length",
  help: "claimed tasks and LRP instances waiting for a start slot, by cell",
  labelNames: ["cell"] as const,
  collect() {
    this.reset();
    for (const [cell, q] of startQueues) this.set({ cell }, q.state().queued);
  },
});

/** Shows a cell's start queue at each scrape; returns the unregister. */
export function registerStartQueue(cellId: string, queue: StartQueueSource): () => void {
  startQueues.set(cellId, queue);
  return () => startQueues.delete(cellId);
}
