import { InvalidLrpInstanceError } from "./errors.js";
import type { LrpInstanceSpec } from "./types.js";

const GUID = /^[A-Za-z0-9_-]+$/;

/** Checks what the runner relies on (the API validated the rest); throws naming each problem. */
export function validateInstanceSpec(spec: LrpInstanceSpec): void {
  const problems: string[] = [];
  if (!GUID.test(spec.processGuid)) problems.push("process_guid");
  if (!GUID.test(spec.instanceGuid)) problems.push("instance_guid");
  if (!Number.isInteger(spec.index) || spec.index < 0) problems.push("index");
  if (spec.action?.action.case === undefined) problems.push("action");
  if (!spec.rootfs) problems.push("rootfs");
  if (!Number.isInteger(spec.startTimeoutSec) || spec.startTimeoutSec < 0) problems.push("start_timeout");
  const badPort = spec.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535);
  if (badPort || new Set(spec.ports).size !== spec.ports.length) problems.push("ports");
  for (const [name, value] of [["memory_mb", spec.memoryMb], ["disk_mb", spec.diskMb], ["cpu_weight", spec.cpuWeight]] as const) {
    if (!Number.isInteger(value) || value < 0) problems.push(name);
  }
  if (problems.length > 0) throw new InvalidLrpInstanceError(problems);
}
