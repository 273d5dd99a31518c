import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";

// Compare-and-swap writes to a KV bucket, published straight to the bucket's stream.
//
// nats.js's kv.put/update go through its general request path, which per call builds a
// promise race, a timer and an Error object (the cancel after every reply), and sends each
// publish in its own socket write. Task writes are the receptor's hot path, so this writer
// keeps one reply subscription, sweeps timeouts with one interval, and sends every write
// queued within one turn of the event loop in a single socket write.

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
    // The wording nats.js uses too, so one check recognises either.
    super(`wrong last sequence for '${key}' (expected ${expected}): ${detail}`);
  }
}

export class KvWriteError extends Error {
  override readonly name = "KvWriteError";
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`KV write of '${key}' failed: ${message}`);
  }
}

export interface KvWriter {
  /** Puts `value` if the key's last revision is `expected` (0: the key has never been written). */
  put(key: string, value: Uint8Array, expected: number): Promise<number>;
  /** Writes a delete marker if the key is at revision `expected`. Returns the marker's revision. */
  delete(key: string, expected: number): Promise<number>;
  close(): void;
}

export interface KvWriterOptions {
  timeoutMs?: number;
}

interface Pending {
  key: string;
  expected: number;
  deadline: number;
  resolve(revision: number): void;
  reject(err: Error): void;
}

interface Queued {
  subject: string;
  value: Uint8Array;
  hdrs: MsgHdrs;
  reply: string;
}

export function createKvWriter(nc: NatsConnection, bucket: string, opts: KvWriterOptions = {}): KvWriter {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const inbox = `${createInbox()}.`;
  const pending = new Map<number, Pending>();
  let queue: Queued[] = [];
  let nextId = 1;

  const settle = (id: number, msg: Msg): void => {
    const p = pending.get(id);
    if (!p) return; // timed out already
    pending.delete(id);
    const outcome = parseAck(msg);
    if (typeof outcome === "number") p.resolve(outcome);
    else if (outcome.code === JS_WRONG_LAST_SEQUENCE) p.reject(new KvConflictError(p.key, p.expected, outcome.text));
    else p.reject(new KvWriteError(p.key, outcome.text));
  };

  const sub: Subscription = nc.subscribe(`${inbox}*`, {
    callback: (err, msg) => {
      if (err) return;
      settle(Number(msg.subject.slice(inbox.length)), msg);
    },
  });

  const failAll = (reason: string): void => {
    for (const p of pending.values()) p.reject(new KvWriteError(p.key, reason));
    pending.clear();
  };

  // Deadlines grow with ids (one timeout for all), so the expired ones are at the front.
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, p] of pending) {
      if (p.deadline > now) break;
      pending.delete(id);
      p.reject(new KvWriteError(p.key, `no acknowledgement from JetStream within ${timeoutMs} ms`));
    }
  }, Math.min(250, timeoutMs));
  sweep.unref();
  void nc.closed().then(() => {
    clearInterval(sweep);
    failAll("NATS connection closed");
  });

  const flush = (): void => {
    const batch = queue;
    queue = [];
    // All publishes of one synchronous run go out in one socket write (nats.js flushes once).
    for (const q of batch) {
      try {
        nc.publish(q.subject, q.value, { reply: q.reply, headers: q.hdrs });
      } catch (err) {
        const id = Number(q.reply.slice(inbox.length));
        const p = pending.get(id);
        pending.delete(id);
        p?.reject(new KvWriteError(p.key, err instanceof Error ? err.message : String(err)));
      }
    }
  };

  const write = (key: string, value: Uint8Array, hdrs: MsgHdrs, expected: number): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      if (nc.isClosed()) return reject(new KvWriteError(key, "NATS connection closed"));
      const id = nextId++;
      pending.set(id, { key, expected, deadline: Date.now() + timeoutMs, resolve, reject });
      if (queue.length === 0) setImmediate(flush);
      queue.push({ subject: `$KV.${bucket}.${key}`, value, hdrs, reply: `${inbox}${id}` });
    });

  const casHeaders = (expected: number): MsgHdrs => {
    const h = headers();
    h.set(EXPECTED_LAST_SUBJECT_SEQ, String(expected));
    return h;
  };

  return {
    put: (key, value, expected) => write(key, value, casHeaders(expected), expected),
    delete(key, expected) {
      const h = casHeaders(expected);
      h.set(KV_OPERATION, "DEL");
      return write(key, new Uint8Array(0), h, expected);
    },
    close() {
      clearInterval(sweep);
      sub.unsubscribe();
      failAll("writer closed");
    },
  };
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
