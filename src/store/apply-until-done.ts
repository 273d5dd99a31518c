import { retryUntilDone, type RetryOptions } from "../nats/index.js";
import type { StoredTask, TaskStore } from "./task-store.js";
import type { Transition } from "./transitions.js";

/**
 * Applies a transition until it is written or the fresh record refuses it (someone else
 * decided: an InvalidStateTransitionError, TaskNotFoundError or the caller's own error). Every
 * attempt after the first reads the record again: the first may have gone through with its reply
 * lost, and the transition then sees its own result ("already so", see transitions.ts).
 * Resolves with the record as written.
 */
export function applyUntilDone(
  store: TaskStore,
  guid: string,
  transition: Transition,
  opts: Omit<RetryOptions, "what"> & { what?: string; known?: StoredTask },
): Promise<StoredTask> {
  const attempt = async (n: number): Promise<StoredTask> => (await store.apply(guid, transition, n === 0 ? opts.known : undefined)).after;
  return retryUntilDone(attempt, {
    ...opts,
    what: opts.what ?? `task ${guid}`,
  });
}

/** Removes a task at `revision` until done; a conflict or a missing key is an answer. */
export function removeUntilDone(store: TaskStore, guid: string, revision: number, opts: Omit<RetryOptions, "what"> & { what?: string }): Promise<void> {
  return retryUntilDone(() => store.remove(guid, revision), { ...opts, what: opts.what ?? `remove task ${guid}` });
}
