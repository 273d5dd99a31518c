import type { CellRegistry } from "../store/index.js";

// The registry has no "cell gone" event (a presence simply stops being refreshed and expires),
// so poll its in-memory view and report when a cell session seen before is no longer live.

export interface CellWatch {
  stop(): void;
}

export function watchForLostCells(registry: CellRegistry, everyMs: number, onLost: (cellIds: string[]) => void): CellWatch {
  // Judged as the converger judges (as of when the view was last complete), so the pass this
  // triggers sees the same loss.
  const sessions = (): Map<string, string> => new Map(registry.listInView().map((p) => [`${p.cellId}\u0000${p.sessionId}`, p.cellId]));
  let seen = sessions();
  const timer = setInterval(() => {
    const now = sessions();
    const lost = [...seen.entries()].filter(([key]) => !now.has(key)).map(([, id]) => id);
    seen = now;
    if (lost.length > 0) onLost(lost);
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
