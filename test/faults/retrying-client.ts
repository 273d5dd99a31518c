import { backoffMs } from "../../src/nats/retry.js";
import { sleep } from "./fault-support.js";

// A receptor client for a run where receptors die: a create that meets a connection error (or a
// 5xx) is sent again to the other receptor. A retried create may find that its first attempt
// did get through before the response was lost: 409 then means "created".

export type CreateOutcome = "created" | "created-on-retry" | "exists-after-retry";

export class CreateFailedError extends Error {
  override readonly name = "CreateFailedError";
}

export interface RetryingClient {
  create(guid: string, body: Record<string, unknown>): Promise<CreateOutcome>;
  /** GET /v1/tasks/<guid> status (with the same failover). */
  status(guid: string): Promise<number>;
  /** Attempts that met a connection error or a 5xx. */
  failedAttempts(): number;
}

export function createRetryingClient(bases: string[], deadlineMs: number): RetryingClient {
  let failed = 0;
  let next = 0;

  /** Sends to one receptor after another until some answer below 500 arrives. */
  const send = async (path: string, init: RequestInit): Promise<{ res: Response; attempts: number }> => {
    const deadline = Date.now() + deadlineMs;
    for (let attempt = 1; ; attempt++) {
      const base = bases[next++ % bases.length]!;
      try {
        const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
        if (res.status < 500) return { res, attempts: attempt };
        await res.body?.cancel();
      } catch {
        // Connection refused or reset: that receptor is down (or died mid-request).
      }
      failed += 1;
      if (Date.now() > deadline) throw new CreateFailedError(`${init.method ?? "GET"} ${path}: no receptor answered in ${deadlineMs} ms`);
      // Backing off, as a real client would: hundreds of creates retrying every 100 ms through a
      // NATS outage kept the two cores so busy that nats-server took a minute to start again.
      if (attempt % bases.length === 0) await sleep(backoffMs(attempt / bases.length, 100, 2_000));
    }
  };

  return {
    async create(guid, body) {
      const { res, attempts } = await send("/v1/tasks", { method: "POST", body: JSON.stringify({ task_guid: guid, ...body }) });
      const text = await res.text();
      if (res.status === 201) return attempts === 1 ? "created" : "created-on-retry";
      if (res.status === 409 && attempts > 1) return "exists-after-retry";
      throw new CreateFailedError(`create ${guid}: ${res.status} ${text}`);
    },
    async status(guid) {
      const { res } = await send(`/v1/tasks/${guid}`, { method: "GET" });
      await res.body?.cancel();
      return res.status;
    },
    failedAttempts: () => failed,
  };
}
