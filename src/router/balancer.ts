import type { Endpoint, Pool } from "./route-table.js";

// Round robin per hostname, starting at a random position (gorouter's choice, reference 9.3).
// Why round robin rather than least connections: routers are stateless and several run, so a
// router's own connection counts are a partial view anyway; round robin spreads evenly with O(1)
// work per request and no shared state, and a slow instance is the monitor's business.
// An endpoint that refused a connection is skipped for a while, unless every endpoint is
// marked (then marked ones are tried rather than none).

export const FAILED_ENDPOINT_SKIP_MS = 5_000;

export class Balancer {
  private readonly next = new Map<string, number>();
  private readonly failedUntil = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** An endpoint of the pool not in `tried`, or undefined when none is left. */
  pick(pool: Pool, tried: ReadonlySet<string>): Endpoint | undefined {
    const eps = pool.endpoints;
    const n = eps.length;
    if (n === 0) return undefined;
    const start = this.next.get(pool.hostname) ?? Math.floor(Math.random() * n);
    let fallback: Endpoint | undefined;
    for (let i = 0; i < n; i++) {
      const ep = eps[(start + i) % n]!;
      if (tried.has(ep.id)) continue;
      if (this.isMarked(ep.id)) {
        fallback ??= ep;
        continue;
      }
      this.next.set(pool.hostname, (start + i + 1) % n);
      return ep;
    }
    return fallback;
  }

  markFailed(ep: Endpoint): void {
    this.failedUntil.set(ep.id, this.now() + FAILED_ENDPOINT_SKIP_MS);
  }

  private isMarked(id: string): boolean {
    const until = this.failedUntil.get(id);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.failedUntil.delete(id);
    return false;
  }
}
