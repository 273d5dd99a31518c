import { create, toBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { LogMessageSchema } from "../../../src/gen/diego/v1/internal_pb.js";
import { subjects, subjectToken } from "../../../src/nats/index.js";
import { createLineSplitter } from "./line-splitter.js";

export type LogStream = "stdout" | "stderr";

/** One writer on one source name. Each process gets its own, so partial lines never mix. */
export interface LogSourceWriter {
  readonly name: string;
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** Publishes text as one or more whole messages (Diego's own lines: "Exit status 0" ...). */
  line(text: string, stream?: LogStream): void;
  /** Publishes the partial last lines of stdout and stderr; call when the process ended. */
  end(): void;
}

export interface LogStreamer {
  /** A new writer for source name (empty = the task's default source). */
  source(name?: string): LogSourceWriter;
  readonly defaultSource: string;
  /** Resolves once everything published so far reached the NATS server. */
  flush(): Promise<void>;
}

export interface LogStreamerOptions {
  nc: NatsConnection;
  /** Empty: the task has no log_guid and nothing is published. */
  logGuid: string;
  taskGuid: string;
  /** The task's log_source; "LOG" when empty. */
  defaultSource?: string;
  logger?: Logger;
}

const STREAM_NUMBER: Record<LogStream, number> = { stdout: 1, stderr: 2 };

// Wall-clock nanoseconds, kept monotonic and sub-millisecond by anchoring hrtime once.
const clockBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
const nowNs = (): bigint => clockBase + process.hrtime.bigint();

/**
 * Publishes a task's output as protobuf LogMessages on diego.logs.<log guid>. NATS keeps the
 * order of one connection's publishes, and every publish here is synchronous, so messages of a
 * source arrive in the order they were written.
 */
export function createLogStreamer(opts: LogStreamerOptions): LogStreamer {
  const defaultSource = opts.defaultSource || "LOG";
  const subject = subjects.logs(subjectToken(opts.logGuid));
  let warned = false;

  const publish = (sourceName: string, stream: LogStream, message: string): void => {
    if (!opts.logGuid) return;
    const msg = create(LogMessageSchema, {
      logGuid: opts.logGuid,
      sourceName,
      stream: STREAM_NUMBER[stream],
      message,
      timestamp: nowNs(),
      taskGuid: opts.taskGuid,
    });
    try {
      opts.nc.publish(subject, toBinary(LogMessageSchema, msg));
    } catch (err) {
      // A closed connection must not fail the task; logs are best effort.
      if (!warned) opts.logger?.warn({ err }, "cannot publish task logs");
      warned = true;
    }
  };

  return {
    defaultSource,
    source(name) {
      const sourceName = name || defaultSource;
      const out = createLineSplitter((m) => publish(sourceName, "stdout", m));
      const err = createLineSplitter((m) => publish(sourceName, "stderr", m));
      return {
        name: sourceName,
        stdout: (chunk) => out.write(chunk),
        stderr: (chunk) => err.write(chunk),
        line(text, stream = "stdout") {
          const splitter = createLineSplitter((m) => publish(sourceName, stream, m));
          splitter.write(Buffer.from(text));
          splitter.end();
        },
        end() {
          out.end();
          err.end();
        },
      };
    },
    async flush() {
      if (!opts.logGuid || opts.nc.isClosed()) return;
      // Bounded: a flush waits for the server's PONG, which a stalled or starting server may
      // never send; a task's result must not wait on its log lines.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        opts.nc.flush(),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, FLUSH_TIMEOUT_MS))),
      ]).finally(() => clearTimeout(timer));
    },
  };
}

const FLUSH_TIMEOUT_MS = 2_000;
