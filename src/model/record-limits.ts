// How large a task's stored record may be. Each record is one NATS message, which the server
// refuses above its max_payload (1 MB by default); a record must fit not only when created but
// after every later transition, or the task is stuck with no way to complete, cancel or delete
// it. After creation a record only grows by what these bound: the result (the first 10 KiB of
// result_file), the failure reason (cut below), the cell id and session, timestamps and counters.

/** A failure reason is cut to this many bytes when a task completes. */
export const MAX_FAILURE_REASON_BYTES = 4 * 1024;

/** The result (10 KiB), the failure reason, the cell id and session, and NATS's own headers. */
export const RECORD_HEADROOM_BYTES = 10 * 1024 + MAX_FAILURE_REASON_BYTES + 2 * 1024 + 4 * 1024;

/** What nats-server allows when it does not say (its default max_payload). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** The largest new record a server with this max_payload will take through every transition. */
export const maxNewRecordBytes = (maxPayload: number | undefined): number => (maxPayload ?? DEFAULT_MAX_PAYLOAD) - RECORD_HEADROOM_BYTES;

export class RecordTooLargeError extends Error {
  override readonly name = "RecordTooLargeError";
  constructor(
    readonly size: number,
    readonly limit: number,
    readonly maxPayload: number,
  ) {
    super(
      `the task is ${size} bytes when stored, over the ${limit}-byte limit ` +
        `(the NATS server's max_payload of ${maxPayload} bytes less ${RECORD_HEADROOM_BYTES} kept for its result and failure reason)`,
    );
  }
}

/** `reason` cut to MAX_FAILURE_REASON_BYTES, on a character boundary. */
export function capFailureReason(reason: string): string {
  if (reason.length <= MAX_FAILURE_REASON_BYTES / 3 || Buffer.byteLength(reason, "utf8") <= MAX_FAILURE_REASON_BYTES) return reason;
  // Decoding a cut buffer drops a partial last character as U+FFFD; trim it off.
  return Buffer.from(reason, "utf8").subarray(0, MAX_FAILURE_REASON_BYTES - 3).toString("utf8").replace(/\uFFFD$/, "") + "…";
}
