// A closed-loop load generator: `concurrency` workers each issue one call at a time until
// `total` calls are done. Latency is measured per call, from issue to reply.

export interface LoadResult {
  calls: number;
  /** Per-call latency in ms, sorted. */
  latencies: Float64Array;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: unknown;
}

export async function runLoad(total: number, concurrency: number, call: (i: number) => Promise<unknown>): Promise<LoadResult> {
  const latencies = new Float64Array(total);
  let next = 0;
  let errors = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < total; i = next++) {
      const start = process.hrtime.bigint();
      try {
        await call(i);
      } catch (err) {
        errors += 1;
        firstError ??= err;
      }
      latencies[i] = Number(process.hrtime.bigint() - start) / 1e6;
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return loadResult(latencies, Number(process.hrtime.bigint() - started) / 1e9, errors, firstError);
}

/** The result of calls that took `latencies` ms each (sorted here) in `seconds` in all. */
export function loadResult(latencies: Float64Array, seconds: number, errors: number, firstError?: unknown): LoadResult {
  latencies.sort();
  return {
    calls: latencies.length,
    latencies,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors,
    firstError,
  };
}

/** Several runs of the same call as one: total calls over total time, latencies pooled. */
export function combine(results: LoadResult[]): LoadResult {
  const calls = results.reduce((n, r) => n + r.calls, 0);
  const seconds = results.reduce((n, r) => n + r.seconds, 0);
  const latencies = new Float64Array(calls);
  let at = 0;
  for (const r of results) {
    latencies.set(r.latencies, at);
    at += r.calls;
  }
  return loadResult(
    latencies,
    seconds,
    results.reduce((n, r) => n + r.errors, 0),
    results.find((r) => r.firstError !== undefined)?.firstError,
  );
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Runs `fn` `times` times one after another and returns the median duration in ms. */
export async function medianMs(times: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return percentile(ms, 0.5);
}
