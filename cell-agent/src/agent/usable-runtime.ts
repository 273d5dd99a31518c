import type { Logger } from "pino";
import { createSandboxRuntime, RuntimeUnavailableError, type SandboxRuntime } from "../sandbox/index.js";

export interface UsableRuntimeOptions {
  runtime: "runc" | "crun";
  /** The runtime was not chosen by the user: crun missing or unusable means runc. */
  fallback: boolean;
  workDir: string;
  logger: Logger;
  /** The crun binary (tests point it at one that does not exist). */
  crunBinary?: string;
}

/**
 * The cell's runtime, ready (stale containers removed). crun by default: it starts a container
 * in a fraction of runc's time (docs/load.md); a cell where it is missing or unusable uses runc
 * and says why, unless crun was asked for by name.
 */
export async function usableRuntime(opts: UsableRuntimeOptions): Promise<SandboxRuntime> {
  const binary = opts.runtime === "crun" ? opts.crunBinary : undefined;
  const first = createSandboxRuntime({ runtime: opts.runtime, binary, workDir: opts.workDir, logger: opts.logger });
  try {
    await first.cleanupStale();
    return first;
  } catch (err) {
    if (!(opts.fallback && opts.runtime === "crun" && err instanceof RuntimeUnavailableError)) throw err;
    opts.logger.warn({ reason: err.message }, "crun is not usable here; the cell runs containers with runc instead (--runtime chooses)");
    const runc = createSandboxRuntime({ runtime: "runc", workDir: opts.workDir, logger: opts.logger });
    await runc.cleanupStale();
    return runc;
  }
}
