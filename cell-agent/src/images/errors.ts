/** What went wrong, for callers that branch on it; the message (`reason`) is for people. */
export type ImagePullErrorKind =
  | "invalid-reference"
  | "not-found"
  | "unauthorized"
  | "unreachable"
  | "timeout"
  | "digest-mismatch"
  | "bad-manifest"
  | "unsupported"
  | "no-matching-platform"
  | "registry-error"
  | "extract-failed"
  | "cache-error"
  | "aborted";

/** The one error a pull fails with. `reason` (also the message) reads like "image not found: host/org/img:tag". */
export class ImagePullError extends Error {
  override readonly name = "ImagePullError";

  constructor(
    readonly kind: ImagePullErrorKind,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}
