import { createHash } from "node:crypto";

const MAX_ID = 64;

/** `<process_guid>-<instance_guid>` as in 2015, cut to a length runtimes and logs handle well. */
export function instanceContainerId(processGuid: string, instanceGuid: string): string {
  const full = `${processGuid}-${instanceGuid}`;
  if (full.length <= MAX_ID) return full;
  return `${full.slice(0, MAX_ID - 17)}-${createHash("sha256").update(full).digest("hex").slice(0, 16)}`;
}
