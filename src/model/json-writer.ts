// A small JSON writer: like JSON.stringify, but bigint values are written as exact integers
// (created_at is nanoseconds, beyond what a double holds exactly).

export type JsonValue =
  | string
  | number
  | boolean
  | bigint
  | null
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

export function writeJson(value: JsonValue): string {
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(writeJson).join(",")}]`;
  const parts: string[] = [];
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${writeJson(v)}`);
  }
  return `{${parts.join(",")}}`;
}
