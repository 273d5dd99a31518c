/**
 * A controller whose signal also aborts when parent does, so a wrapper step can cancel its
 * children without cancelling its siblings. dispose() detaches it from the parent.
 */
export interface ChildAbort {
  readonly signal: AbortSignal;
  abort(): void;
  dispose(): void;
}

export function childAbort(parent: AbortSignal): ChildAbort {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    dispose: () => parent.removeEventListener("abort", onAbort),
  };
}
