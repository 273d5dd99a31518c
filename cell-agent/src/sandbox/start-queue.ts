import PQueue from "p-queue";
import type { Sandbox } from "./types.js";

// A cell starts containers a few at a time: runc/crun starts, overlay mounts and cgroup writes
// all compete for the same cores, so past about two per core each start only gets slower and
// nothing finishes sooner. Tasks and LRP instances wait here in arrival order for a slot.

export interface StartSlot {
  /** Gives the slot back; later calls do nothing. */
  release(): void;
}

export interface StartQueueState {
  /** Containers being created or started now (at most the limit). */
  starting: number;
  /** Waiting for a slot. */
  queued: number;
}

export interface StartQueue {
  /** Most containers being created or started at once. */
  readonly limit: number;
  /**
   * Waits, in FIFO order, for a slot; rejects with the signal's reason when it aborts first
   * (a cancelled task leaves the queue). Hold the slot until the container's first process runs.
   */
  acquire(signal?: AbortSignal): Promise<StartSlot>;
  state(): StartQueueState;
  /** The most slots ever held at once. */
  peak(): number;
  /** Called after every change of state (a slot taken or given back, a wait begun or given up). */
  onChange(listener: (state: StartQueueState) => void): () => void;
}

export class InvalidStartLimitError extends Error {
  override readonly name = "InvalidStartLimitError";
}

export function createStartQueue(limit: number): StartQueue {
  if (!Number.isInteger(limit) || limit < 1) throw new InvalidStartLimitError(`the start limit must be a whole number of at least 1, got ${limit}`);
  const queue = new PQueue({ concurrency: limit });
  const listeners = new Set<(s: StartQueueState) => void>();
  let starting = 0;
  let peak = 0;
  const state = (): StartQueueState => ({ starting, queued: queue.size });
  const changed = (): void => {
    const s = state();
    for (const l of listeners) l(s);
  };

  const acquire = (signal?: AbortSignal): Promise<StartSlot> => {
    signal?.throwIfAborted();
    // Only the wait is abortable: p-queue would also free a running slot on abort, while the
    // start it stands for goes on.
    const waiting = new AbortController();
    const giveUp = (): void => waiting.abort(signal?.reason);
    signal?.addEventListener("abort", giveUp, { once: true });
    return new Promise<StartSlot>((resolve, reject) => {
      queue
        .add(
          () =>
            new Promise<void>((done) => {
              signal?.removeEventListener("abort", giveUp);
              starting++;
              peak = Math.max(peak, starting);
              let held = true;
              resolve({
                release() {
                  if (!held) return;
                  held = false;
                  starting--;
                  done();
                  changed();
                },
              });
              changed();
            }),
          { signal: waiting.signal },
        )
        .catch((err: unknown) => {
          signal?.removeEventListener("abort", giveUp);
          reject(err);
          changed();
        });
      changed();
    });
  };

  return {
    limit,
    acquire,
    state,
    peak: () => peak,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * The sandbox, holding `slot` until its first process has started (the runtime wrote its pid)
 * or ended, whichever comes first: the container's start is then done and the next may begin.
 */
export function releaseOnFirstStart(sandbox: Sandbox, slot: StartSlot): Sandbox {
  const wrap =
    (fn: NonNullable<Sandbox["runOnce"]>): NonNullable<Sandbox["runOnce"]> =>
    (proc, io, signal, opts) => {
      const onStart = (): void => {
        slot.release();
        io.onStart?.();
      };
      const p = fn.call(sandbox, proc, { ...io, onStart }, signal, opts);
      p.finally(() => slot.release()).catch(() => undefined);
      return p;
    };
  return {
    get id() {
      return sandbox.id;
    },
    get rootfsPath() {
      return sandbox.rootfsPath;
    },
    get hostRootUid() {
      return sandbox.hostRootUid;
    },
    run: wrap(sandbox.run),
    runOnce: sandbox.runOnce && wrap(sandbox.runOnce),
    signal: sandbox.signal?.bind(sandbox),
    destroy: (opts) => sandbox.destroy(opts),
  };
}
