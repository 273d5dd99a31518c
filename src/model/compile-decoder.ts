import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { FastReader } from "./fast-reader.js";

// The reading half of compile-encoder.ts: fromBinary decodes through protobuf-es's reflection
// API, 30 µs of CPU per gRPC CreateTask here. This builds, once per message type, a function
// per field number from the same descriptors, and makes the same plain objects fromBinary
// makes (every implicit field at its zero value, oneofs as {case, value}, unknown fields kept
// in $unknown). test/model/compile-codec.test.ts compares it with fromBinary.

type Fields = Record<string, unknown>;
type FieldReader = (r: FastReader, msg: Fields, wireType: number, depth: number) => void;

interface CompiledMessage {
  typeName: string;
  /** A new message with every field at its default. */
  zero(): Fields;
  readers: Map<number, FieldReader>;
}

export type Decoder<T extends Message> = (bytes: Uint8Array) => T;

const IMPLICIT = 2; // google.protobuf.FeatureSet.FieldPresence.IMPLICIT
const LENGTH_DELIMITED = 2;
const MAX_DEPTH = 100; // fromBinary's recursion limit

export function compileDecoder<T extends Message>(schema: DescMessage): Decoder<T> {
  const root = compileMessage(schema, new Map());
  return (bytes) => {
    const r = new FastReader(bytes);
    const msg = root.zero();
    readFields(root, r, msg, r.len, 0);
    return msg as unknown as T;
  };
}

function readFields(m: CompiledMessage, r: FastReader, msg: Fields, end: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`cannot decode ${m.typeName}: nested more than ${MAX_DEPTH} deep`);
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    const wireType = tag & 7;
    if (no === 0) throw new Error(`cannot decode ${m.typeName}: illegal field number 0`);
    const read = m.readers.get(no);
    if (read) {
      read(r, msg, wireType, depth);
      continue;
    }
    const data = r.skip(wireType, no);
    ((msg.$unknown ??= []) as Array<{ no: number; wireType: number; data: Uint8Array }>).push({ no, wireType, data });
  }
  if (r.pos !== end) throw new Error(`cannot decode ${m.typeName}: a field runs past the end of its message`);
}

function compileMessage(desc: DescMessage, seen: Map<string, CompiledMessage>): CompiledMessage {
  const known = seen.get(desc.typeName);
  if (known) return known;
  const compiled: CompiledMessage = { typeName: desc.typeName, zero: zeroFactory(desc), readers: new Map() };
  // Registered first, so recursive types (Action) find themselves.
  seen.set(desc.typeName, compiled);
  for (const f of desc.fields) compiled.readers.set(f.number, fieldReader(f, seen));
  return compiled;
}

function zeroFactory(desc: DescMessage): () => Fields {
  const defaults: Array<[string, () => unknown]> = [];
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      defaults.push([member.localName, () => ({ case: undefined })]);
      continue;
    }
    const f = member;
    if (f.fieldKind === "list") defaults.push([f.localName, () => []]);
    else if (f.fieldKind === "map") defaults.push([f.localName, () => ({})]);
    else if (f.fieldKind === "message" || f.presence !== IMPLICIT) continue;
    else {
      const zero = f.fieldKind === "enum" ? f.enum.values[0]?.number ?? 0 : scalarZero(f.scalar, f.longAsString);
      defaults.push([f.localName, () => zero]);
    }
  }
  const typeName = desc.typeName;
  return () => {
    const msg: Fields = { $typeName: typeName };
    for (const [name, value] of defaults) msg[name] = value();
    return msg;
  };
}

function scalarZero(type: ScalarType, longAsString: boolean): unknown {
  switch (type) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? "0" : 0n;
    default:
      return 0;
  }
}

/** Stores a decoded value where the field lives: on the message, or as its oneof's case. */
function fieldSetter(f: DescField): (msg: Fields, v: unknown) => void {
  const name = f.localName;
  if (!f.oneof) return (msg, v) => void (msg[name] = v);
  const group = f.oneof.localName;
  return (msg, v) => void (msg[group] = { case: name, value: v });
}

function fieldGetter(f: DescField): (msg: Fields) => unknown {
  const name = f.localName;
  if (!f.oneof) return (msg) => msg[name];
  const group = f.oneof.localName;
  return (msg) => {
    const o = msg[group] as { case?: string; value?: unknown };
    return o.case === name ? o.value : undefined;
  };
}

function fieldReader(f: DescField, seen: Map<string, CompiledMessage>): FieldReader {
  const set = fieldSetter(f);
  switch (f.fieldKind) {
    case "scalar":
    case "enum": {
      const read = scalarReader(f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar, f.fieldKind === "scalar" && f.longAsString);
      return (r, msg) => set(msg, read(r));
    }
    case "message": {
      if (f.delimitedEncoding) throw new Error(`${f.toString()}: group encoding is not supported`);
      const get = fieldGetter(f);
      let inner: CompiledMessage | undefined;
      return (r, msg, _wt, depth) => {
        inner ??= compileMessage(f.message, seen);
        const end = r.length() + r.pos;
        // A message field seen twice is merged, as protobuf requires.
        const target = (get(msg) as Fields | undefined) ?? inner.zero();
        readFields(inner, r, target, end, depth + 1);
        set(msg, target);
      };
    }
    case "list": {
      const name = f.localName;
      if (f.listKind === "message") {
        let inner: CompiledMessage | undefined;
        return (r, msg, _wt, depth) => {
          inner ??= compileMessage(f.message, seen);
          const end = r.length() + r.pos;
          const item = inner.zero();
          readFields(inner, r, item, end, depth + 1);
          (msg[name] as unknown[]).push(item);
        };
      }
      const type = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
      const read = scalarReader(type, f.listKind === "scalar" && f.longAsString);
      const packable = type !== ScalarType.STRING && type !== ScalarType.BYTES;
      return (r, msg, wireType) => {
        const list = msg[name] as unknown[];
        if (!packable || wireType !== LENGTH_DELIMITED) {
          list.push(read(r));
          return;
        }
        const end = r.length() + r.pos;
        while (r.pos < end) list.push(read(r));
      };
    }
    case "map":
      throw new Error(`${f.toString()}: map fields are not supported`);
  }
}

function scalarReader(type: ScalarType, longAsString: boolean): (r: FastReader) => unknown {
  const long = (read: (r: FastReader) => bigint): ((r: FastReader) => unknown) =>
    longAsString ? (r) => read(r).toString() : read;
  switch (type) {
    case ScalarType.STRING:
      return (r) => r.string();
    case ScalarType.BOOL:
      return (r) => r.bool();
    case ScalarType.DOUBLE:
      return (r) => r.double();
    case ScalarType.FLOAT:
      return (r) => r.float();
    case ScalarType.INT32:
      return (r) => r.int32();
    case ScalarType.UINT32:
      return (r) => r.uint32();
    case ScalarType.SINT32:
      return (r) => r.sint32();
    case ScalarType.FIXED32:
      return (r) => r.fixed32();
    case ScalarType.SFIXED32:
      return (r) => r.sfixed32();
    case ScalarType.INT64:
      return long((r) => r.int64());
    case ScalarType.UINT64:
      return long((r) => r.uint64());
    case ScalarType.SINT64:
      return long((r) => r.sint64());
    case ScalarType.FIXED64:
      return long((r) => r.fixed64());
    case ScalarType.SFIXED64:
      return long((r) => r.sfixed64());
    case ScalarType.BYTES:
      return (r) => r.bytes();
  }
}
