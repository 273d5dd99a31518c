import pino, { type DestinationStream, type Logger } from "pino";
import { createLogFormatter } from "./log-format.js";

export type LogFormat = "auto" | "json" | "text";

/**
 * Logs on stderr (stdout stays free for the `ready` line): JSON lines for machines, or one
 * readable line each for a person; "auto" picks text when stderr is a terminal.
 */
export function createLogger(level: string, name: string, format: LogFormat = "json"): Logger {
  const text = format === "text" || (format === "auto" && process.stderr.isTTY === true);
  return pino({ name, level, base: { pid: process.pid } }, text ? textDestination(name) : pino.destination(2));
}

function textDestination(name: string): DestinationStream {
  // Synchronous like pino.destination(2), so nothing is lost when the process exits.
  const out = pino.destination({ dest: 2, sync: true });
  const format = createLogFormatter(name);
  return { write: (line: string) => void out.write(format(line)) };
}
