import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { hostHelper } from "./host-helper.js";

// Each user-namespaced container gets its own range of 65536 host ids, registered in /etc/subuid
// and /etc/subgid for the cell's user (claimed under a host-wide lock, so concurrent cells and
// other tools see it taken), released when the container is gone. So no two containers share a
// host uid, and none owns the shared layers (those stay root-owned; they are idmapped instead).

export const RANGE_SIZE = 65536;
const RECORD = "subids";

export interface SubidRanges {
  /** Claims a free range (lowest first, from the floor up); resolves its first host id. */
  claim(bundle: string): Promise<number>;
  /** Releases the range recorded in bundle (if any); idempotent. */
  release(bundle: string): Promise<void>;
}

export function createSubidRanges(floor: number): SubidRanges {
  const user = os.userInfo().username;
  const helper = hostHelper();
  return {
    async claim(bundle) {
      const start = await helper.claimSubids(user, RANGE_SIZE, floor);
      try {
        // Recorded in the bundle so cleanupStale can release it after a crash.
        await writeFile(path.join(bundle, RECORD), `${start}\n`, { mode: 0o600 });
      } catch (err) {
        await helper.releaseSubids(user, start, RANGE_SIZE);
        throw err;
      }
      return start;
    },
    async release(bundle) {
      const start = Number((await readFile(path.join(bundle, RECORD), "utf8").catch(() => "")).trim());
      if (!Number.isInteger(start) || start <= 0) return;
      await helper.releaseSubids(user, start, RANGE_SIZE);
    },
  };
}
