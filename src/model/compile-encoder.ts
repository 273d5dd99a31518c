import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { FastWriter } from "./fast-writer.js";

// protobuf-es's toBinary walks every message through its reflection API and its BinaryWriter,
// which made encoding a task record the largest single cost of a task create (38 µs of about
// 290). This builds, once per message type, a plain function per field from the same
// descriptors, and writes the same bytes (fields in number order, unknown fields last) with
// FastWriter. test/model/compile-codec.test.ts compares it with toBinary.

type Fields = Record<string, unknown>;
type FieldWriter = (w: FastWriter, msg: Fields) => void;
type ValueWriter = (w: FastWriter, value: unknown) => void;

export type Encoder<T extends Message> = (message: T) => Uint8Array;

const IMPLICIT = 2; // google.protobuf.FeatureSet.FieldPresence.IMPLICIT

export function compileEncoder<T extends Message>(schema: DescMessage): Encoder<T> {
  const write = messageWriter(schema, new Map());
  // One writer per encoder: encoding is synchronous, and finish() hands out a copy.
  const w = new FastWriter();
  return (message) => {
    write(w.reset(), message as unknown as Fields);
    return w.finish();
  };
}

type MessageWriter = (w: FastWriter, msg: Fields) => void;

function messageWriter(desc: DescMessage, seen: Map<string, MessageWriter>): MessageWriter {
  const known = seen.get(desc.typeName);
  if (known) return known;
  let fields: FieldWriter[] = [];
  const write: MessageWriter = (w, msg) => {
    for (let i = 0; i < fields.length; i++) fields[i]!(w, msg);
    const unknown = msg.$unknown as Array<{ no: number; wireType: WireType; data: Uint8Array }> | undefined;
    if (unknown) for (const u of unknown) w.tag(u.no, u.wireType).raw(u.data);
  };
  // Registered before the fields are built, so recursive types (Action) refer to it.
  seen.set(desc.typeName, write);
  fields = [...desc.fields].sort((a, b) => a.number - b.number).map((f) => fieldWriter(f, seen));
  return write;
}

function fieldWriter(f: DescField, seen: Map<string, MessageWriter>): FieldWriter {
  const value = valueWriter(f, seen);
  const read = fieldReader(f);
  const skip = skipTest(f);
  return (w, msg) => {
    const v = read(msg);
    if (!skip(v)) value(w, v);
  };
}

/** Where the field's value lives: on the message, or inside its oneof's {case, value}. */
function fieldReader(f: DescField): (msg: Fields) => unknown {
  const name = f.localName;
  if (!f.oneof) return (msg) => msg[name];
  const group = f.oneof.localName;
  return (msg) => {
    const o = msg[group] as { case?: string; value?: unknown } | undefined;
    return o?.case === name ? o.value : undefined;
  };
}

/** isSet: absent, and for implicit presence also the zero value, is not written. */
function skipTest(f: DescField): (v: unknown) => boolean {
  if (f.fieldKind === "list") return (v) => (v as unknown[]).length === 0;
  if (f.fieldKind === "message" || f.oneof || f.presence !== IMPLICIT) return (v) => v === undefined;
  if (f.fieldKind === "enum") return (v) => v === 0;
  switch (f.scalar) {
    case ScalarType.STRING:
      return (v) => v === "";
    case ScalarType.BOOL:
      return (v) => v === false;
    case ScalarType.BYTES:
      return (v) => (v as Uint8Array).length === 0;
    default:
      // 0, 0n, or "0" for 64-bit fields kept as strings.
      return (v) => v === 0 || v === 0n || v === "0";
  }
}

function valueWriter(f: DescField, seen: Map<string, MessageWriter>): ValueWriter {
  const no = f.number;
  switch (f.fieldKind) {
    case "scalar":
    case "enum": {
      const type = f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar;
      const scalar = scalarWriter(type);
      const wire = wireTypeOf(type);
      return (w, v) => scalar(w.tag(no, wire), v);
    }
    case "message": {
      if (f.delimitedEncoding) throw new Error(`${f.toString()}: group encoding is not supported`);
      const inner = lazy(() => messageWriter(f.message, seen));
      return (w, v) => {
        w.tag(no, WireType.LengthDelimited).fork();
        inner()(w, v as Fields);
        w.join();
      };
    }
    case "list": {
      if (f.listKind === "message") {
        const inner = lazy(() => messageWriter(f.message, seen));
        return (w, v) => {
          for (const item of v as Fields[]) {
            w.tag(no, WireType.LengthDelimited).fork();
            inner()(w, item);
            w.join();
          }
        };
      }
      const type = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
      const scalar = scalarWriter(type);
      if (f.packed) {
        return (w, v) => {
          w.tag(no, WireType.LengthDelimited).fork();
          for (const item of v as unknown[]) scalar(w, item);
          w.join();
        };
      }
      const wire = wireTypeOf(type);
      return (w, v) => {
        for (const item of v as unknown[]) scalar(w.tag(no, wire), item);
      };
    }
    case "map":
      throw new Error(`${f.toString()}: map fields are not supported`);
  }
}

function lazy<T>(make: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= make());
}

function scalarWriter(type: ScalarType): ValueWriter {
  switch (type) {
    case ScalarType.STRING:
      return (w, v) => w.string(v as string);
    case ScalarType.BOOL:
      return (w, v) => w.bool(v as boolean);
    case ScalarType.DOUBLE:
      return (w, v) => w.double(v as number);
    case ScalarType.FLOAT:
      return (w, v) => w.float(v as number);
    case ScalarType.INT32:
      return (w, v) => w.int32(v as number);
    case ScalarType.UINT32:
      return (w, v) => w.uint32(v as number);
    case ScalarType.SINT32:
      return (w, v) => w.sint32(v as number);
    case ScalarType.FIXED32:
      return (w, v) => w.fixed32(v as number);
    case ScalarType.SFIXED32:
      return (w, v) => w.sfixed32(v as number);
    case ScalarType.INT64:
      return (w, v) => w.int64(v as bigint | string);
    case ScalarType.UINT64:
      return (w, v) => w.uint64(v as bigint | string);
    case ScalarType.SINT64:
      return (w, v) => w.sint64(v as bigint | string);
    case ScalarType.FIXED64:
      return (w, v) => w.fixed64(v as bigint | string);
    case ScalarType.SFIXED64:
      return (w, v) => w.sfixed64(v as bigint | string);
    case ScalarType.BYTES:
      return (w, v) => w.bytes(v as Uint8Array);
  }
}

function wireTypeOf(type: ScalarType): WireType {
  switch (type) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}
