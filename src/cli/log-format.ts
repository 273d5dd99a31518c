import { createRequire } from "node:module";

// pino's JSON lines as one readable line each, for a person at a terminal (pino-pretty):
//
//   19:05:28.777 INFO  receptor: receptor listening address=127.0.0.1:8888 tasks=0
//
// Time of day in UTC, the level, the component (or the process's name), the message, then the
// other fields as key=value. An error's stack follows on indented lines. A line that is not
// JSON passes through.

/** Fields every line has, shown in their own places or not at all. */
const PLACED = new Set(["level", "time", "pid", "hostname", "name", "component", "msg", "err"]);

export type LogFormatter = (line: string) => string;

/**
 * `processName` is the logger's name: pino-pretty hands the level prettifier a record without
 * the ignored keys, so the fallback for a line without a component is given here.
 */
export function createLogFormatter(processName: string): LogFormatter {
  // Loaded here, not at the top: JSON logs (the default) do not pay its ~0.1 s start-up.
  const { prettyFactory } = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
  return prettyFactory({
    colorize: false,
    useOnlyCustomProps: false, // with its default (true) and no custom levels, the level prettifier gets no label
    translateTime: "UTC:HH:MM:ss.l",
    ignore: "pid,hostname,name",
    hideObject: true, // the fields are in the message, as key=value
    customPrettifiers: {
      time: (time) => String(time), // without pino-pretty's brackets
      level: (_level, _key, log, { label }) => `${label.padEnd(5)} ${String((log as Record<string, unknown>).component ?? processName)}:`,
    },
    messageFormat: (log, messageKey) =>
      [log[messageKey], ...Object.entries(log).filter(([k]) => !PLACED.has(k)).map(([k, v]) => `${k}=${fieldValue(v)}`)]
        .filter((part) => part !== undefined && part !== "")
        .join(" ") + stackOf(log.err),
  });
}

/** Plain words as they are; anything with spaces, quotes or structure as JSON. */
function fieldValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

function stackOf(err: unknown): string {
  if (!err || typeof err !== "object") return "";
  const e = err as Record<string, unknown>;
  const stack = typeof e.stack === "string" ? e.stack : `${String(e.type ?? "Error")}: ${String(e.message ?? "")}`;
  return `\n${stack.replace(/^/gm, "    ")}`;
}
