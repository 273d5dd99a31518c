import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { runCommand } from "./command.js";
import { RuntimeUnavailableError } from "./errors.js";

const CGROUP_MOUNT = "/sys/fs/cgroup";
const UNIFIED_CONTROLLERS = `${CGROUP_MOUNT}/unified/cgroup.controllers`;

/**
 * crun refuses hybrid cgroups ("cgroups in hybrid mode not supported, drop all controllers from
 * cgroupv2") while any controller (here: hugetlb) is still attached to the cgroup2 hierarchy.
 * A controller nobody uses on cgroup2 can be moved to its own v1 hierarchy by mounting it, which
 * is what we do when allowed; otherwise (or when that fails) a clear error says what to run.
 */
export async function ensureCrunCompatibleCgroups(fix: boolean, logger?: Logger): Promise<void> {
  const left = await unifiedControllers();
  if (left.length === 0) return;
  if (!fix) throw new RuntimeUnavailableError(hybridMessage(left, "automatic fixing is disabled"));
  for (const controller of left) {
    const target = path.join(CGROUP_MOUNT, controller);
    await mkdir(target, { recursive: true }).catch(() => undefined);
    const res = await runCommand("mount", ["-t", "cgroup", "-o", controller, "cgroup", target]);
    logger?.info({ controller, ok: res.code === 0 }, "moved cgroup controller off cgroup2 for crun");
  }
  // A concurrent cell may have won the race; what counts is that nothing is left on cgroup2.
  const still = await unifiedControllers();
  if (still.length > 0) throw new RuntimeUnavailableError(hybridMessage(still, "mounting it as cgroup v1 failed"));
}

async function unifiedControllers(): Promise<string[]> {
  try {
    return (await readFile(UNIFIED_CONTROLLERS, "utf8")).split(/\s+/).filter(Boolean);
  } catch {
    return []; // no unified hierarchy mounted: nothing for crun to object to
  }
}

function hybridMessage(controllers: string[], why: string): string {
  const cmds = controllers
    .map((c) => `mkdir -p ${CGROUP_MOUNT}/${c} && mount -t cgroup -o ${c} cgroup ${CGROUP_MOUNT}/${c}`)
    .join("; ");
  return (
    `crun needs the ${controllers.join(", ")} cgroup controller moved off cgroup2 first ` +
    `(crun does not support hybrid cgroups; ${why}). Run as root: ${cmds}`
  );
}
