/** Counts concurrent holders; acquire waits (abortably) for a free slot. */
export interface Semaphore {
  acquire(signal?: AbortSignal): Promise<() => void>;
}

export function createSemaphore(limit: number): Semaphore {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = (): void => {
    active--;
    waiting.shift()?.();
  };
  const once = (): (() => void) => {
    let done = false;
    return () => {
      if (!done) (done = true), release();
    };
  };
  return {
    acquire(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (active < limit) {
        active++;
        return Promise.resolve(once());
      }
      return new Promise((resolve, reject) => {
        const grant = (): void => {
          signal?.removeEventListener("abort", onAbort);
          active++;
          resolve(once());
        };
        const onAbort = (): void => {
          const i = waiting.indexOf(grant);
          if (i >= 0) waiting.splice(i, 1);
          reject(signal?.reason);
        };
        waiting.push(grant);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
  };
}

export interface KeyedLock {
  /** Runs fn for one key at a time; other keys are not held up. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** True while fn of that key runs or waits. */
  held(key: string): boolean;
}

export function createKeyedLock(): KeyedLock {
  const tails = new Map<string, Promise<unknown>>();
  return {
    async run(key, fn) {
      const before = tails.get(key) ?? Promise.resolve();
      const run = before.then(fn, fn);
      const tail = run.catch(() => undefined);
      tails.set(key, tail);
      try {
        return await run;
      } finally {
        if (tails.get(key) === tail) tails.delete(key);
      }
    },
    held: (key) => tails.has(key),
  };
}
