import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";

// The one retry loop every write that must happen goes through: a state change a cell,
// auctioneer, converger or dispatcher has decided on is tried again, with exponential backoff
// and jitter, until it is done or an answer (not a fault) ends it: the compare-and-swap showed
// that someone else decided, the task is gone, the caller stopped. A NATS disconnect, a
// JetStream leader election or a lost reply is a fault; it never drops the write.

export interface RetryOptions {
  /** Names the write in log lines ("complete task X"). */
  what: string;
  logger?: Logger;
  /** Aborting stops the loop (process shutdown); the last error is thrown. */
  signal?: AbortSignal;
  /** Give up after this long; default: never. */
  maxMs?: number;
  /** First wait; doubled after every failure up to maxDelayMs. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Errors that are answers rather than faults; thrown at once. Default: not isTransient. */
  isFinal?: (err: unknown) => boolean;
}

/** Thrown when maxMs passed: the last fault is its cause. */
export class RetryTimeoutError extends Error {
  override readonly name = "RetryTimeoutError";
  constructor(what: string, ms: number, cause: unknown) {
    super(`${what}: still failing after ${ms} ms: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

const TRANSIENT_NAMES = new Set([
  "KvRequestError",
  "TimeoutError",
  "NoResponders",
  "NoRespondersError",
  "RequestError",
  "ConnectionError",
  "JetStreamNotEnabled",
  "JetStreamStatusError",
  "RetryTimeoutError",
]);
const TRANSIENT_TEXT = /timeout|timed out|no responders|temporarily unavailable|disconnected|reconnect|not available|no reply|leader|503/i;

/**
 * A NATS or JetStream fault that may pass: the connection, a timeout, an election. Judged by the
 * error's class (messages may quote task guids, which are user input), and for JetStream API
 * errors by their status.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "KvRequestError") return !(err as { closed?: boolean }).closed;
  if (TRANSIENT_NAMES.has(err.name)) return true;
  if (err.name === "JetStreamApiError" || err.name === "JetStreamError") {
    const status = (err as { status?: number }).status;
    return status === 503 || status === 408 || status === 500 || TRANSIENT_TEXT.test(err.message);
  }
  return false;
}

/** Exponential backoff with "equal jitter": half the step, plus a random part of the other half. */
export function backoffMs(attempt: number, minMs: number, maxMs: number): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20));
  return step / 2 + (Math.random() * step) / 2;
}

export async function retryUntilDone<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const isFinal = opts.isFinal ?? ((err: unknown) => !isTransient(err));
  const began = Date.now();
  const minMs = opts.minDelayMs ?? 50;
  const maxMs = opts.maxDelayMs ?? 1_000;
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await fn(attempt);
      if (attempt > 0) opts.logger?.info({ what: opts.what, attempts: attempt + 1 }, "write went through after retries");
      return result;
    } catch (err) {
      if (isFinal(err) || opts.signal?.aborted) throw err;
      const elapsed = Date.now() - began;
      if (opts.maxMs !== undefined && elapsed >= opts.maxMs) throw new RetryTimeoutError(opts.what, elapsed, err);
      // The first failure and then every tenth: enough to see an outage without a flood.
      if (attempt % 10 === 0) opts.logger?.warn({ what: opts.what, attempt: attempt + 1, err: (err as Error).message }, "write failed; retrying");
      try {
        await delay(backoffMs(attempt, minMs, maxMs), undefined, { signal: opts.signal });
      } catch {
        throw err; // aborted while waiting
      }
    }
  }
}
