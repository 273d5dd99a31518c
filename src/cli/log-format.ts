// One pino JSON log line as one readable line, for a person at a terminal:
//
//   19:05:28.777 INFO  receptor: receptor listening address=127.0.0.1:8888 tasks=0
//
// Time of day in UTC, the level, the component (or the process name), the message, then the
// other fields as key=value. An error's stack follows on indented lines.

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** Fields every line has, shown in their own places or not at all. */
const PLACED = new Set(["level", "time", "pid", "hostname", "name", "component", "msg", "err"]);

type LogRecord = Record<string, unknown>;

export function formatLogLine(line: string): string {
  let rec: LogRecord;
  try {
    rec = JSON.parse(line) as LogRecord;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`; // not pino's: pass it through
  }
  const time = typeof rec.time === "number" ? new Date(rec.time).toISOString().slice(11, 23) : "";
  const level = (LEVELS[Number(rec.level)] ?? String(rec.level)).padEnd(5);
  const who = String(rec.component ?? rec.name ?? "");
  const fields = Object.entries(rec)
    .filter(([k]) => !PLACED.has(k))
    .map(([k, v]) => `${k}=${fieldValue(v)}`);
  let out = [time, level, who ? `${who}:` : "", rec.msg === undefined ? "" : String(rec.msg), ...fields].filter(Boolean).join(" ");
  const err = rec.err as LogRecord | undefined;
  if (err && typeof err === "object") {
    const stack = typeof err.stack === "string" ? err.stack : `${String(err.type ?? "Error")}: ${String(err.message ?? "")}`;
    out += `\n${stack.replace(/^/gm, "    ")}`;
  }
  return `${out}\n`;
}

/** Plain words as they are; anything with spaces, quotes or structure as JSON. */
function fieldValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}
