// How tasks, cells and log lines look to a person: tables, ages, one-line summaries.

/** The TaskResponse fields the CLI shows (see docs/api.md). */
export interface TaskView {
  task_guid: string;
  domain: string;
  state: string;
  cell_id?: string;
  failed?: boolean;
  failure_reason?: string;
  result?: string;
  created_at?: number | string;
  log_guid?: string;
  [field: string]: unknown;
}

export interface CellView {
  cell_id: string;
  zone: string;
  stacks: string[];
  task_count: number;
  capacity: Resources;
  available: Resources;
}

interface Resources {
  memory_mb: number;
  disk_mb: number;
  containers: number;
}

export interface LogLineView {
  source_name?: string;
  stream?: string;
  message?: string;
  timestamp?: number | string;
  task_guid?: string;
}

/** Columns padded to their widest cell, two spaces apart; the last one is not padded. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

export function shorten(text: string, max: number): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** `created_at` is nanoseconds since the epoch; a JS number is precise enough for an age. */
export function createdAtMs(task: TaskView): number | undefined {
  const ns = Number(task.created_at);
  return Number.isFinite(ns) && ns > 0 ? ns / 1e6 : undefined;
}

/** 42s, 3m12s, 5h3m, 2d4h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** 0.8s, 12.3s, 2m5s. */
export function formatElapsed(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : formatAge(ms);
}

/** succeeded / failed: reason, once the task is COMPLETED (or RESOLVING); empty before. */
export function outcome(task: TaskView, max = Infinity): string {
  if (task.state !== "COMPLETED" && task.state !== "RESOLVING") return "";
  return task.failed ? `failed: ${shorten(task.failure_reason || "(no reason given)", max)}` : "succeeded";
}

export function taskTable(tasks: TaskView[], now: number): string {
  const rows = [...tasks]
    .sort((a, b) => (createdAtMs(a) ?? 0) - (createdAtMs(b) ?? 0) || a.task_guid.localeCompare(b.task_guid))
    .map((t) => {
      const created = createdAtMs(t);
      return [t.task_guid, t.domain, t.state, t.cell_id || "-", outcome(t, 40) || "-", created === undefined ? "-" : formatAge(now - created)];
    });
  return renderTable(["GUID", "DOMAIN", "STATE", "CELL", "OUTCOME", "AGE"], rows);
}

/** `diego task get`: one field a line. */
export function taskDetails(task: TaskView, now: number): string {
  const created = createdAtMs(task);
  const fields: Array<[string, string]> = [
    ["guid", task.task_guid],
    ["domain", task.domain],
    ["state", task.state],
    ["cell", task.cell_id || "-"],
    ["outcome", outcome(task) || "-"],
    ["age", created === undefined ? "-" : `${formatAge(now - created)} (created ${new Date(created).toISOString()})`],
  ];
  if (task.result) fields.push(["result", JSON.stringify(task.result)]);
  for (const key of ["stack", "root_fs", "log_guid", "log_source", "memory_mb", "disk_mb", "cpu_weight", "privileged", "result_file", "completion_callback_url", "annotation"]) {
    const v = task[key];
    if (v !== undefined && v !== "" && v !== 0 && v !== false && v !== null) fields.push([key, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  if (task.action !== undefined) fields.push(["action", JSON.stringify(task.action)]);
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join("\n") + "\n";
}

export function cellTable(cells: CellView[]): string {
  const pair = (avail: number, cap: number): string => `${avail}/${cap}`;
  const rows = [...cells]
    .sort((a, b) => a.cell_id.localeCompare(b.cell_id))
    .map((c) => [
      c.cell_id,
      c.zone,
      c.stacks.join(","),
      String(c.task_count),
      pair(c.available.containers, c.capacity.containers),
      pair(c.available.memory_mb, c.capacity.memory_mb),
      pair(c.available.disk_mb, c.capacity.disk_mb),
    ]);
  return renderTable(["CELL", "ZONE", "STACKS", "TASKS", "CONTAINERS FREE", "MEMORY MB FREE", "DISK MB FREE"], rows);
}

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

/** `diego task watch`: 19:45:01.123  changed  my-task  RUNNING  cell=cell-1 */
export function eventLine(kind: string, task: TaskView, now: number): string {
  const parts = [clock(now), kind.replace(/^task_/, "").padEnd(7), task.task_guid, task.state];
  if (task.cell_id) parts.push(`cell=${task.cell_id}`);
  const result = outcome(task, 80);
  if (result && kind !== "task_removed") parts.push(result);
  parts.push(`domain=${task.domain}`);
  return parts.join("  ");
}

/** `diego task logs`: 19:45:01.123 [source] OUT message */
export function logLine(line: LogLineView): string {
  const ns = Number(line.timestamp);
  const at = Number.isFinite(ns) && ns > 0 ? clock(ns / 1e6) : clock(Date.now());
  const stream = line.stream === "stderr" ? "ERR" : "OUT";
  return `${at} [${line.source_name || "-"}] ${stream} ${(line.message ?? "").replace(/\n$/, "")}`;
}
