// A FIFO of keys worked on by at most `concurrency` workers at once. A key already queued or in
// progress is not queued twice: whatever happens to it next arrives as a fresh event anyway.

export interface WorkQueue {
  push(key: string): void;
  /** Keys being worked on now. */
  active(): number;
  queued(): number;
  /** Stops taking keys and waits for the workers in progress. */
  drain(): Promise<void>;
}

export function createWorkQueue(
  concurrency: number,
  worker: (key: string) => Promise<void>,
  onError: (key: string, err: unknown) => void,
): WorkQueue {
  const waiting: string[] = [];
  const pending = new Set<string>();
  const running = new Map<string, Promise<void>>();
  let closed = false;

  const pump = (): void => {
    while (!closed && running.size < concurrency && waiting.length > 0) {
      const key = waiting.shift()!;
      pending.delete(key);
      const job = worker(key)
        .catch((err: unknown) => onError(key, err))
        .finally(() => {
          running.delete(key);
          pump();
        });
      running.set(key, job);
    }
  };

  return {
    push(key) {
      if (closed || pending.has(key) || running.has(key)) return;
      pending.add(key);
      waiting.push(key);
      pump();
    },
    active: () => running.size,
    queued: () => waiting.length,
    async drain() {
      closed = true;
      waiting.length = 0;
      pending.clear();
      await Promise.all(running.values());
    },
  };
}
