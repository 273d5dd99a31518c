import PQueue from "p-queue";

// At most N instances make their container and start their process at once. Hundreds of
// `runc` starts, mounts and namespaces at the same moment on a 2-core cell all finish late:
// bounded, the first instances are RUNNING early and the cell does not thrash.

export interface StartSlots {
  /** Waits for a free slot; resolves with its release (idempotent). Rejects when signal aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void>;
}

export function createStartSlots(concurrency: number): StartSlots {
  const queue = new PQueue({ concurrency: Math.max(1, concurrency) });
  return {
    acquire(signal) {
      return new Promise<() => void>((granted, refused) => {
        queue
          .add(
            () =>
              new Promise<void>((done) => {
                let released = false;
                granted(() => {
                  if (!released) (released = true), done();
                });
              }),
            { signal },
          )
          .catch(refused);
      });
    },
  };
}
