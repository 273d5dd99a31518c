import PQueue from "p-queue";

// A FIFO of keys worked on by at most `concurrency` workers at once (p-queue). A key already
// queued or in progress is not queued twice: whatever happens to it next arrives as a fresh event
// anyway.

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
  const queue = new PQueue({ concurrency });
  /** Keys queued or in progress. */
  const keys = new Set<string>();
  let closed = false;

  return {
    push(key) {
      if (closed || keys.has(key)) return;
      keys.add(key);
      void queue
        .add(() => worker(key))
        .catch((err: unknown) => onError(key, err))
        .finally(() => keys.delete(key));
    },
    active: () => queue.pending,
    queued: () => queue.size,
    async drain() {
      closed = true;
      queue.clear(); // the dropped keys' promises never settle: nothing waits on them
      keys.clear();
      await queue.onPendingZero();
    },
  };
}
