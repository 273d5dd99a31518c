// Readers of one JSON value each, used by the decoders compile-json.ts generates. A wrong type
// is noted in Problems (naming the field) and SKIP is returned; the caller uses the zero value.

export type Obj = Record<string, unknown>;

export const SKIP = Symbol("skip");
/** Reads one JSON value; `depth` is the nesting of recursive messages, for message readers. */
export type Read<T> = (v: unknown, where: string, problems: Problems, depth?: number) => T | typeof SKIP;

/** The wrong JSON types found in one request body, each naming its field. */
export class Problems {
  /** Kept to a few, so that a body of 100,000 wrong array entries gets a short answer. */
  static readonly SHOWN = 20;
  readonly shown: string[] = [];
  count = 0;

  add(problem: string): void {
    if (++this.count <= Problems.SHOWN) this.shown.push(problem);
  }

  toString(): string {
    const more = this.count - this.shown.length;
    return this.shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return `the number ${v}`;
  // Digits sent as a string are shown, up to a length: out-of-range answers show what came.
  if (typeof v === "string" && /^-?[0-9]+$/.test(v)) return `the string "${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return `a ${typeof v}`;
}

export function wrong(problems: Problems, where: string, expected: string, got: unknown): typeof SKIP {
  problems.add(`field '${where}' must be ${expected}, got ${describe(got)}`);
  return SKIP;
}

export const at = (path: string, key: string): string => (path ? `${path}.${key}` : key);

export const own = (o: Obj, key: string): unknown => (Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined);

export const readString: Read<string> = (v, where, p) => (typeof v === "string" ? v : wrong(p, where, "a string", v));

export const readBool: Read<boolean> = (v, where, p) => (typeof v === "boolean" ? v : wrong(p, where, "a boolean", v));

export function readInt(min: number, max: number, kind: string): Read<number> {
  return (v, where, p) => (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : wrong(p, where, kind, v));
}

export const readInt32 = readInt(-0x80000000, 0x7fffffff, "an integer");
export const readUint32 = readInt(0, 0xffffffff, "a non-negative integer");

/** An int64, as a JSON number or (as Go and protobuf JSON write large ones) a string of digits. */
export const readInt64: Read<bigint> = (v, where, p) => {
  const n = typeof v === "number" && Number.isInteger(v) ? BigInt(v) : typeof v === "string" && /^-?[0-9]+$/.test(v) ? BigInt(v) : undefined;
  if (n === undefined) return wrong(p, where, "an integer", v);
  // Beyond int64 it would wrap when stored (9999999999999999999 ns read back negative).
  if (n < INT64_MIN || n > INT64_MAX) {
    p.add(`field '${where}' is out of range: must be an integer from ${INT64_MIN} to ${INT64_MAX}, got ${describe(v)}`);
    return SKIP;
  }
  return n;
};

const safeUint = readInt(0, Number.MAX_SAFE_INTEGER, `an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
/** A uint64 as a JSON number (which holds integers exactly only up to 2^53 - 1). */
export const readUint64: Read<bigint> = (v, where, p) => {
  const n = safeUint(v, where, p);
  return n === SKIP ? SKIP : BigInt(n);
};

export const readNumber: Read<number> = (v, where, p) => (typeof v === "number" ? v : wrong(p, where, "a number", v));

export const readBytes: Read<Uint8Array> = (v, where, p) =>
  typeof v === "string" && /^[A-Za-z0-9+/_-]*=*$/.test(v) ? new Uint8Array(Buffer.from(v, "base64")) : wrong(p, where, "a base64 string", v);

/** An enum value by its name (without prefix) or number. */
export function readEnum(numbers: ReadonlyMap<string, number>, kind: string): Read<number> {
  return (v, where, p) => {
    if (typeof v === "number" && Number.isInteger(v)) return v;
    const n = typeof v === "string" ? numbers.get(v) : undefined;
    return n !== undefined ? n : wrong(p, where, kind, v);
  };
}

/** Any JSON value, as compact JSON text (a map value holding raw JSON, json-rules.ts). */
export const readRawJson: Read<string> = (v) => JSON.stringify(v);

/** Sets a key as an own property, even "__proto__" (a JSON key is data, never a prototype). */
export function setOwn(o: Obj, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
