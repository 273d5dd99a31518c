import { onNatsStatus } from "../nats/index.js";
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";

// Compare-and-swap writes and direct reads of a KV bucket, sent straight to its stream.
//
// nats.js's kv.put/update/get go through its general request path, which per call builds a
// promise race, a timer and an Error object (the cancel after every reply), and sends each
// request in its own socket write. Task writes and reads are the receptor's hot path, so this
// client keeps one reply subscription, sweeps timeouts with one interval, and sends every
// request queued within one turn of the event loop in a single socket write.

const EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence";
const KV_OPERATION = "KV-Operation";
const JS_WRONG_LAST_SEQUENCE = 10071;

export class KvConflictError extends Error {
  override readonly name = "KvConflictError";
  constructor(
    readonly key: string,
    readonly expected: number,
    detail: string,
  ) {
    super(`wrong last sequence for '${key}' (expected ${expected}): ${detail}`);
  }
}

export class KvRequestError extends Error {
  override readonly name = "KvRequestError";
  /** The connection or client was closed: no retry will help. */
  readonly closed: boolean;
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`KV request for '${key}' failed: ${reason}`);
    this.closed = reason === CLOSED || reason === CLIENT_CLOSED;
  }
}

const CLOSED = "NATS connection closed";
const CLIENT_CLOSED = "KV client closed";

/** The latest entry of a key: a value, or the marker of its deletion. */
export interface KvEntry {
  operation: "PUT" | "DEL" | "PURGE";
  value: Uint8Array;
  revision: number;
}

export interface KvClient {
  /** Puts `value` if the key's last revision is `expected` (0: the key has never been written). */
  put(key: string, value: Uint8Array, expected: number): Promise<number>;
  /** Writes a delete marker if the key is at revision `expected`. Returns the marker's revision. */
  delete(key: string, expected: number): Promise<number>;
  /** The key's latest entry (possibly a delete marker), or undefined if it was never written. */
  get(key: string): Promise<KvEntry | undefined>;
  close(): void;
}

export interface KvClientOptions {
  timeoutMs?: number;
}

interface Pending {
  key: string;
  deadline: number;
  /** Turns the reply into the result, or throws what the request failed with. */
  read(msg: Msg): unknown;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Queued {
  id: number;
  subject: string;
  value: Uint8Array;
  hdrs?: MsgHdrs;
}

/** `bucket` is the KV bucket's name; its stream must allow direct gets (nats.js buckets do). */
export function createKvClient(nc: NatsConnection, bucket: string, opts: KvClientOptions = {}): KvClient {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const inbox = `${createInbox()}.`;
  const pending = new Map<number, Pending>();
  let queue: Queued[] = [];
  let nextId = 1;

  const settle = (id: number, msg: Msg): void => {
    const p = pending.get(id);
    if (!p) return; // timed out already
    pending.delete(id);
    try {
      p.resolve(p.read(msg));
    } catch (err) {
      p.reject(err as Error);
    }
  };

  const sub: Subscription = nc.subscribe(`${inbox}*`, {
    callback: (err, msg) => {
      if (err) return;
      settle(Number(msg.subject.slice(inbox.length)), msg);
    },
  });

  const failAll = (reason: string): void => {
    for (const p of pending.values()) p.reject(new KvRequestError(p.key, reason));
    pending.clear();
  };

  // Deadlines grow with ids (one timeout for all), so the expired ones are at the front.
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, p] of pending) {
      if (p.deadline > now) break;
      pending.delete(id);
      p.reject(new KvRequestError(p.key, `no reply from JetStream within ${timeoutMs} ms`));
    }
  }, Math.min(250, timeoutMs));
  sweep.unref();
  void nc.closed().then(() => {
    clearInterval(sweep);
    failAll(CLOSED);
  });

  // nats.js drops whatever was published while disconnected when it reconnects, so a request
  // sent then would only time out: fail the pending ones at a disconnect and again at the
  // reconnect (their callers retry). New requests are not refused on the strength of these
  // events: a missed event must never wedge the client.
  const stopStatus = onNatsStatus(nc, (s) => {
    if (s.type === "disconnect") failAll("NATS disconnected");
    else if (s.type === "reconnect") failAll("NATS reconnected; requests sent meanwhile were dropped");
  });

  const flush = (): void => {
    const batch = queue;
    queue = [];
    // All publishes of one synchronous run go out in one socket write (nats.js flushes once).
    for (const q of batch) {
      const reply = `${inbox}${q.id}`;
      try {
        nc.publish(q.subject, q.value, q.hdrs ? { reply, headers: q.hdrs } : { reply });
      } catch (err) {
        const p = pending.get(q.id);
        pending.delete(q.id);
        p?.reject(new KvRequestError(p.key, err instanceof Error ? err.message : String(err)));
      }
    }
  };

  // No closure per request beyond the promise's own: under tsx every named one costs a
  // defineProperty call (esbuild's keepNames).
  const request = <T>(key: string, subject: string, value: Uint8Array, hdrs: MsgHdrs | undefined, read: (msg: Msg) => T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (nc.isClosed()) return reject(new KvRequestError(key, CLOSED));
      const id = nextId++;
      pending.set(id, { key, deadline: Date.now() + timeoutMs, read, resolve: resolve as (v: unknown) => void, reject });
      if (queue.length === 0) setImmediate(flush);
      queue.push({ id, subject, value, hdrs });
    });

  const write = (key: string, value: Uint8Array, hdrs: MsgHdrs, expected: number): Promise<number> =>
    request(key, `$KV.${bucket}.${key}`, value, hdrs, (msg) => {
      const outcome = parseAck(msg);
      if (typeof outcome === "number") return outcome;
      if (outcome.code === JS_WRONG_LAST_SEQUENCE) throw new KvConflictError(key, expected, outcome.text);
      throw new KvRequestError(key, outcome.text);
    });

  const directGet = `$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.`;

  const casHeaders = (expected: number): MsgHdrs => {
    const h = headers();
    h.set(EXPECTED_LAST_SUBJECT_SEQ, String(expected));
    return h;
  };

  return {
    put: (key, value, expected) => write(key, value, casHeaders(expected), expected),
    get: (key) => request(key, directGet + key, EMPTY, undefined, (msg) => parseDirectGet(key, msg)),
    delete(key, expected) {
      const h = casHeaders(expected);
      h.set(KV_OPERATION, "DEL");
      return write(key, new Uint8Array(0), h, expected);
    },
    close() {
      clearInterval(sweep);
      stopStatus();
      sub.unsubscribe();
      failAll(CLIENT_CLOSED);
    },
  };
}

const EMPTY = new Uint8Array(0);

/** A direct-get reply: the message with its sequence in a header, or a 404 status. */
function parseDirectGet(key: string, msg: Msg): KvEntry | undefined {
  const h = msg.headers;
  if (h?.code === 404) return undefined;
  if (h?.code === 503) throw new KvRequestError(key, "no stream for the bucket, or it does not allow direct gets (no responders)");
  if (!h || h.hasError) throw new KvRequestError(key, `direct get failed: ${h?.code ?? ""} ${h?.description ?? "reply without headers"}`);
  const op = h.get(KV_OPERATION);
  const revision = Number(h.get("Nats-Sequence"));
  if (!Number.isSafeInteger(revision) || revision <= 0) throw new KvRequestError(key, "direct get reply without a sequence");
  return { operation: op === "DEL" || op === "PURGE" ? op : "PUT", value: msg.data, revision };
}

/** A JetStream publish ack: the stored sequence, or the error it reports. */
function parseAck(msg: Msg): number | { code: number; text: string } {
  if (msg.headers?.code === 503) return { code: 503, text: "no stream for the bucket (no responders)" };
  let ack: { seq?: number; error?: { err_code?: number; description?: string } };
  try {
    ack = JSON.parse(msg.string()) as typeof ack;
  } catch {
    return { code: 0, text: `unreadable acknowledgement: ${msg.string().slice(0, 200)}` };
  }
  if (ack.error) return { code: ack.error.err_code ?? 0, text: ack.error.description ?? "unknown JetStream error" };
  if (typeof ack.seq !== "number") return { code: 0, text: "acknowledgement without a sequence" };
  return ack.seq;
}
