import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { FastReader } from "./fast-reader.js";
import { scalarMethods } from "./scalar-methods.js";

// The reading half of compile-encoder.ts: fromBinary decodes through protobuf-es's reflection
// API, 30 µs of CPU per gRPC CreateTask here. This generates, once per message type, the source
// of a function that makes the message as an object literal and a switch over its field
// numbers, from the same descriptors. It makes the same plain objects fromBinary makes (every
// implicit field at its zero value, oneofs as {case, value}, unknown fields kept in $unknown).
// Only descriptor names reach the source, quoted by JSON.stringify.
// test/model/compile-codec.test.ts compares it with fromBinary.

export type Decoder<T extends Message> = (bytes: Uint8Array) => T;

/** A new message of one type with every field at its default. */
type ZeroFn = () => Record<string, unknown>;
/** Reads fields into `msg` up to `end`. */
type ReadFn = (r: FastReader, msg: Record<string, unknown>, end: number, depth: number) => void;

const IMPLICIT = 2; // google.protobuf.FeatureSet.FieldPresence.IMPLICIT
const MAX_DEPTH = 100; // fromBinary's recursion limit

interface Generated {
  zero: ZeroFn[];
  read: ReadFn[];
  seen: Map<string, number>;
}

export function compileDecoder<T extends Message>(schema: DescMessage): Decoder<T> {
  const g: Generated = { zero: [], read: [], seen: new Map() };
  const root = generate(schema, g);
  const zero = g.zero[root]!;
  const read = g.read[root]!;
  return (bytes) => {
    const r = new FastReader(bytes);
    const msg = zero();
    read(r, msg, r.len, 0);
    return msg as unknown as T;
  };
}

const q = (s: string): string => JSON.stringify(s);

/** Generates the functions of `desc` (and of the types it uses) into `g`; returns their index. */
function generate(desc: DescMessage, g: Generated): number {
  const known = g.seen.get(desc.typeName);
  if (known !== undefined) return known;
  const index = g.zero.length;
  // Registered first, so recursive types (Action) find themselves.
  g.seen.set(desc.typeName, index);
  g.zero.push(undefined as unknown as ZeroFn);
  g.read.push(undefined as unknown as ReadFn);
  g.zero[index] = new Function(`return function zero() { return ${zeroLiteral(desc)}; };`)() as ZeroFn;
  const cases = desc.fields.map((f) => `      case ${f.number}: ${fieldSource(f, (m) => generate(m, g))} break;`).join("\n");
  const type = q(desc.typeName);
  const source = `return function read(r, m, end, depth) {
  if (depth > ${MAX_DEPTH}) throw new Error("cannot decode " + ${type} + ": nested more than ${MAX_DEPTH} deep");
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    const wt = tag & 7;
    switch (no) {
${cases}
      default: {
        if (no === 0) throw new Error("cannot decode " + ${type} + ": illegal field number 0");
        const data = r.skip(wt, no);
        (m.$unknown ??= []).push({ no, wireType: wt, data });
      }
    }
  }
  if (r.pos !== end) throw new Error("cannot decode " + ${type} + ": a field runs past the end of its message");
};`;
  g.read[index] = new Function("Z", "R", source)(g.zero, g.read) as ReadFn;
  return index;
}

/** The object literal of a new message: $typeName, then each member that has a default. */
function zeroLiteral(desc: DescMessage): string {
  const parts = [`$typeName: ${q(desc.typeName)}`];
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      parts.push(`${q(member.localName)}: { case: undefined }`);
      continue;
    }
    const f = member;
    if (f.fieldKind === "list") parts.push(`${q(f.localName)}: []`);
    else if (f.fieldKind === "map") parts.push(`${q(f.localName)}: {}`);
    else if (f.fieldKind === "message" || f.presence !== IMPLICIT) continue;
    else if (f.fieldKind === "enum") parts.push(`${q(f.localName)}: ${f.enum.values[0]?.number ?? 0}`);
    else parts.push(`${q(f.localName)}: ${scalarZero(f.scalar, f.longAsString)}`);
  }
  return `{ ${parts.join(", ")} }`;
}

/** The source of a scalar's zero value (shared with the JSON reader in compile-json.ts). */
export function scalarZero(type: ScalarType, longAsString: boolean): string {
  switch (type) {
    case ScalarType.STRING:
      return `""`;
    case ScalarType.BOOL:
      return "false";
    case ScalarType.BYTES:
      return "new Uint8Array(0)";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? `"0"` : "0n";
    default:
      return "0";
  }
}

/** The statements of one `case`: read the value and store it where the field lives. */
function fieldSource(f: DescField, indexOf: (m: DescMessage) => number): string {
  const name = q(f.localName);
  const store = (value: string): string =>
    f.oneof ? `m[${q(f.oneof.localName)}] = { case: ${name}, value: ${value} };` : `m[${name}] = ${value};`;
  switch (f.fieldKind) {
    case "scalar":
    case "enum":
      return store(scalarRead(f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar, f.fieldKind === "scalar" && f.longAsString));
    case "message": {
      if (f.delimitedEncoding) throw new Error(`${f.toString()}: group encoding is not supported`);
      const i = indexOf(f.message);
      // A message field seen twice is merged, as protobuf requires.
      const existing = f.oneof ? `(m[${q(f.oneof.localName)}].case === ${name} ? m[${q(f.oneof.localName)}].value : undefined)` : `m[${name}]`;
      return `{ const e = r.length() + r.pos; const t = ${existing} ?? Z[${i}](); R[${i}](r, t, e, depth + 1); ${store("t")} }`;
    }
    case "list": {
      const list = `m[${name}]`;
      if (f.listKind === "message") {
        const i = indexOf(f.message);
        return `{ const e = r.length() + r.pos; const t = Z[${i}](); R[${i}](r, t, e, depth + 1); ${list}.push(t); }`;
      }
      const type = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
      const read = scalarRead(type, f.listKind === "scalar" && f.longAsString);
      if (type === ScalarType.STRING || type === ScalarType.BYTES) return `${list}.push(${read});`;
      return `if (wt !== 2) ${list}.push(${read}); else { const e = r.length() + r.pos; const l = ${list}; while (r.pos < e) l.push(${read}); }`;
    }
    case "map":
      throw new Error(`${f.toString()}: map fields are not supported`);
  }
}

/** The expression that reads one scalar of this type from `r`. */
function scalarRead(type: ScalarType, longAsString: boolean): string {
  const is64 = [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(type);
  return `r.${scalarMethods[type]}()${is64 && longAsString ? ".toString()" : ""}`;
}
