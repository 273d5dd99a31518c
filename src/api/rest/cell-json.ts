import type { CellPresence } from "../../gen/diego/v1/cell_pb.js";
import type { JsonValue } from "../../model/index.js";

/** A cell as GET /v1/cells shows it (the 2015 receptor's CellResponse). */
export function cellJson(c: CellPresence): JsonValue {
  const resources = (r: CellPresence["capacity"]): JsonValue => ({
    memory_mb: r?.memoryMb ?? 0,
    disk_mb: r?.diskMb ?? 0,
    containers: r?.containers ?? 0,
  });
  return {
    cell_id: c.cellId,
    zone: c.zone,
    stacks: c.stacks,
    capacity: resources(c.capacity),
    available: resources(c.available),
    task_count: c.taskCount,
    rootfs_providers: {
      ...Object.fromEntries(c.rootfsSchemes.map((s) => [s, [] as JsonValue[]])),
      preloaded: c.stacks,
    },
  };
}
