import { ScalarType, type DescEnum, type DescField, type DescMessage, type DescOneof, type Message } from "@bufbuild/protobuf";
import { scalarZero } from "./compile-decoder.js";
import { nonZeroTest } from "./compile-encoder.js";
import { DiegoError } from "./errors.js";
import { depthLimits, invalidEnumName, nullWhenAbsent, nullWhenEmpty, omitWhenEmpty, rawJsonValues, wrappers } from "./json-rules.js";
import * as V from "./json-values.js";

// The REST JSON mapping, generated from the protobuf descriptors and json-rules.ts, the way
// compile-encoder.ts generates the binary writer: once per message type, the source of a writer
// (message -> JSON text, field by field with template-free concatenation) and of a reader (parsed
// JSON -> message as an object literal, each wrong type noted with its path). Only descriptor
// names reach the source, quoted by JSON.stringify. Nothing here knows a particular message:
// a new field or message gets its mapping from its descriptor.
// test/model/json-mapping.test.ts holds both to protobuf-es's toJson/fromJson.

export type JsonWriter<T extends Message> = (message: T) => string;
export type JsonReader<T extends Message> = (json: unknown) => T;

const IMPLICIT = 2; // google.protobuf.FeatureSet.FieldPresence.IMPLICIT
const q = (s: string): string => JSON.stringify(s);

/** Characters JSON.stringify escapes in a string (surrogates only when unpaired; it decides). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** A string as JSON: JSON.stringify costs ~150 ns a call, a test and a concatenation ~40. */
const str = (v: string): string => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);
const float = (v: number): string => (Number.isFinite(v) ? JSON.stringify(v) : `"${v}"`);
const bytes = (v: Uint8Array): string => `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")}"`;
/** Stored JSON text, compacted; text that is not JSON (never stored by the API) as null. */
const raw = (v: string): string => {
  try {
    return JSON.stringify(JSON.parse(v));
  } catch {
    return "null";
  }
};

/** Quoted enum names by number, prefix stripped (protobuf-es's localName). */
function enumNames(e: DescEnum): Record<number, string> {
  const names: Record<number, string> = {};
  for (const v of e.values) names[v.number] = q(v.number === 0 ? invalidEnumName : v.localName);
  return names;
}

const ruleKey = (f: DescField): string => `${f.parent.typeName}.${f.name}`;

/** A one-of whose members are all messages and are all of its message's fields (Action). */
function unionOneof(m: DescMessage): DescOneof | undefined {
  const o = m.oneofs.length === 1 && !m.oneofs[0]!.kind.startsWith("x") ? m.oneofs[0] : undefined;
  return o && o.fields.length === m.fields.length && o.fields.every((f) => f.fieldKind === "message") ? o : undefined;
}

/** How a wrong type of a message value is described: "an action object" for a union. */
function messageKind(m: DescMessage): string {
  const u = unionOneof(m);
  if (!u) return "an object";
  return `${/^[aeiou]/.test(u.name) ? "an" : "a"} ${u.name} object`;
}

// ---- writing ----

type WriteFn = (msg: unknown) => string;

export function compileJsonWriter<T extends Message>(schema: DescMessage): JsonWriter<T> {
  const writers: WriteFn[] = [];
  const enums: Record<number, string>[] = [];
  return writerOf(schema, { writers, enums, seen: new Map() }) as JsonWriter<T>;
}

interface WriterState {
  writers: WriteFn[];
  enums: Record<number, string>[];
  seen: Map<string, number>;
}

function writerOf(desc: DescMessage, st: WriterState): WriteFn {
  return st.writers[writerIndex(desc, st)]!;
}

function writerIndex(desc: DescMessage, st: WriterState): number {
  const known = st.seen.get(desc.typeName);
  if (known !== undefined) return known;
  const index = st.writers.length;
  st.seen.set(desc.typeName, index);
  // A stub until generated, so recursive types (Action) refer to the slot.
  st.writers.push((m) => st.writers[index]!(m));
  if (wrappers.has(desc.typeName)) {
    const only = wrappedField(desc);
    const source = `return function write(m) { return ${valueSource(only, `m[${q(only.localName)}]`, st)}; };`;
    st.writers[index] = new Function("W", "E", "str", "float", "bytes", "raw", source)(st.writers, st.enums, str, float, bytes, raw) as WriteFn;
    return index;
  }
  // Whether a field has been written yet: "no", "yes", or "maybe" (decided at run time).
  let written: "no" | "yes" | "maybe" = "no";
  const put = (name: string, value: string): string => {
    const key = `"${name}":`;
    const prefix = written === "no" ? q(key) : written === "yes" ? q(`,${key}`) : `(s.length === 1 ? ${q(key)} : ${q(`,${key}`)})`;
    return `s += ${prefix} + ${value};`;
  };
  const lines: string[] = [];
  const done = new Set<DescOneof>();
  for (const f of desc.fields) {
    if (f.oneof) {
      if (done.has(f.oneof)) continue;
      done.add(f.oneof);
      lines.push(`  v = m[${q(f.oneof.localName)}];`);
      for (const member of f.oneof.fields) {
        lines.push(`  if (v.case === ${q(member.localName)}) ${put(member.name, valueSource(member, "v.value", st))}`);
      }
      if (written === "no") written = "maybe";
      continue;
    }
    lines.push(`  v = m[${q(f.localName)}];`);
    const omitEmpty = omitWhenEmpty.has(ruleKey(f));
    const nullAbsent = nullWhenAbsent.has(ruleKey(f));
    let test: string | undefined;
    if (f.fieldKind === "list") test = omitEmpty ? "v.length !== 0" : undefined;
    else if (f.fieldKind === "map") test = omitEmpty ? "Object.keys(v).length !== 0" : undefined;
    else if (f.fieldKind === "message") test = nullAbsent ? undefined : "v !== undefined";
    else if (f.presence !== IMPLICIT) test = "v !== undefined";
    else if (omitEmpty) test = nonZeroTest(f);
    const value =
      f.fieldKind === "message" && nullAbsent
        ? `(v === undefined ? "null" : ${valueSource(f, "v", st)})`
        : f.fieldKind === "list" && nullWhenEmpty.has(ruleKey(f))
          ? `(v.length === 0 ? "null" : ${valueSource(f, "v", st)})`
          : valueSource(f, "v", st);
    lines.push(test ? `  if (${test}) ${put(f.name, value)}` : `  ${put(f.name, value)}`);
    if (!test) written = "yes";
    else if (written === "no") written = "maybe";
  }
  const source = `return function write(m) {\n  let v, s = "{";\n${lines.join("\n")}\n  return s + "}";\n};`;
  st.writers[index] = new Function("W", "E", "str", "float", "bytes", "raw", source)(st.writers, st.enums, str, float, bytes, raw) as WriteFn;
  return index;
}

/** The one field of a wrapper message (json-rules.ts `wrappers`): a map. */
function wrappedField(desc: DescMessage): DescField {
  const only = desc.fields[0];
  if (desc.fields.length !== 1 || !only || only.fieldKind !== "map") throw new Error(`${desc.typeName}: a wrapper must have exactly one field, a map`);
  return only;
}

/** The source of one value of `f` (an element, for lists) as JSON text. */
function valueSource(f: DescField, v: string, st: WriterState): string {
  if (f.fieldKind === "list") {
    const element = elementSource(f.listKind === "message" ? f.message : f.listKind === "enum" ? f.enum : f.scalar, "a[i]", st);
    // A writer of its own per list field, so that no closure is made per call.
    const source = `return function list(a) { let t = "["; for (let i = 0; i < a.length; i++) { if (i !== 0) t += ","; t += ${element}; } return t + "]"; };`;
    st.writers.push(new Function("W", "E", "str", "float", "bytes", source)(st.writers, st.enums, str, float, bytes) as WriteFn);
    return `W[${st.writers.length - 1}](${v})`;
  }
  if (f.fieldKind === "map") {
    if (f.mapKey !== ScalarType.STRING) throw new Error(`${f.toString()}: only string map keys are supported in REST JSON`);
    const element = rawJsonValues.has(ruleKey(f)) ? "raw(o[k])" : elementSource(f.mapKind === "message" ? f.message : f.mapKind === "enum" ? f.enum : f.scalar, "o[k]", st);
    const source = `return function map(o) { let t = "{"; for (const k in o) { if (t.length !== 1) t += ","; t += str(k) + ":" + ${element}; } return t + "}"; };`;
    st.writers.push(new Function("W", "E", "str", "float", "bytes", "raw", source)(st.writers, st.enums, str, float, bytes, raw) as WriteFn);
    return `W[${st.writers.length - 1}](${v})`;
  }
  return elementSource(f.fieldKind === "message" ? f.message : f.fieldKind === "enum" ? f.enum : f.scalar, v, st);
}

function elementSource(type: DescMessage | DescEnum | ScalarType, v: string, st: WriterState): string {
  if (typeof type !== "number") {
    if (type.kind === "message") return `W[${writerIndex(type, st)}](${v})`;
    st.enums.push(enumNames(type));
    return `(E[${st.enums.length - 1}][${v}] ?? ${q(q(invalidEnumName))})`;
  }
  switch (type) {
    case ScalarType.STRING:
      return `str(${v})`;
    case ScalarType.BOOL:
      return `(${v} ? "true" : "false")`;
    case ScalarType.BYTES:
      return `bytes(${v})`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `float(${v})`;
    default:
      // Integers, 64-bit ones (bigint) included: exact digits.
      return `("" + ${v})`;
  }
}

// ---- reading ----

type ReadFn = (o: V.Obj, path: string, problems: V.Problems, depth: number) => Record<string, unknown>;

interface ReaderState {
  readers: ReadFn[];
  values: V.Read<unknown>[];
  seen: Map<string, number>;
  /** Types being generated: meeting one again means the type is recursive. */
  open: Set<string>;
}

/** A reader of a request body: wrong types are one InvalidJSON naming each field. */
export function compileJsonReader<T extends Message>(schema: DescMessage): JsonReader<T> {
  const st: ReaderState = { readers: [], values: [], seen: new Map(), open: new Set() };
  const read = st.readers[readerIndex(schema, st)]!;
  return (json) => {
    if (!V.isObject(json)) throw new DiegoError("InvalidJSON", `request body must be a JSON object, got ${V.describe(json)}`);
    const problems = new V.Problems();
    const msg = read(json, "", problems, 0);
    if (problems.count > 0) throw new DiegoError("InvalidJSON", problems.toString());
    return msg as unknown as T;
  };
}

function readerIndex(desc: DescMessage, st: ReaderState): number {
  const known = st.seen.get(desc.typeName);
  if (known !== undefined) {
    if (st.open.has(desc.typeName) && !depthLimits.has(desc.typeName)) {
      throw new Error(`${desc.typeName} is recursive: give it a nesting limit in json-rules.ts`);
    }
    return known;
  }
  const index = st.readers.length;
  st.seen.set(desc.typeName, index);
  st.open.add(desc.typeName);
  st.readers.push((o, path, problems, depth) => st.readers[index]!(o, path, problems, depth));
  const lines: string[] = [];
  const props: string[] = [`$typeName: ${q(desc.typeName)}`];
  const limit = depthLimits.get(desc.typeName);
  if (limit) lines.push(`  if (d > ${limit.max}) throw limitError();`);
  if (wrappers.has(desc.typeName)) {
    // The JSON value is the wrapped field's own (the object `o` is the map).
    const only = wrappedField(desc);
    lines.push(`  let f0; ${fieldRead(only, st, "f0", true)}`);
    props.push(`${q(only.localName)}: f0`);
    st.open.delete(desc.typeName);
    const source = `return function read(o, p, P, d) {\n  let v;\n${lines.join("\n")}\n  return { ${props.join(", ")} };\n};`;
    st.readers[index] = new Function("R", "X", "V", "limitError", source)(st.readers, st.values, V, limit?.error) as ReadFn;
    return index;
  }
  const done = new Set<DescOneof>();
  desc.fields.forEach((f, i) => {
    if (f.oneof) {
      if (done.has(f.oneof)) return;
      done.add(f.oneof);
      const keys = f.oneof.fields.map((m) => m.name);
      lines.push(`  let f${i} = { case: undefined };`);
      lines.push(`  { const ks = ${JSON.stringify(keys)}.filter((k) => { const x = V.own(o, k); return x !== undefined && x !== null; });`);
      lines.push(`    if (ks.length > 1) P.add("field '" + p + "' must have exactly one key naming its " + ${q(f.oneof.name)} + " type, got " + ks.join(", "));`);
      lines.push(`    else if (ks.length === 1) switch (ks[0]) {`);
      for (const m of f.oneof.fields) {
        lines.push(`      case ${q(m.name)}: { let x; ${fieldRead(m, st, "x")} if (x !== undefined) f${i} = { case: ${q(m.localName)}, value: x }; break; }`);
      }
      lines.push(`    } }`);
      props.push(`${q(f.oneof.localName)}: f${i}`);
      return;
    }
    lines.push(`  let f${i}; ${fieldRead(f, st, `f${i}`)}`);
    props.push(`${q(f.localName)}: f${i}`);
  });
  st.open.delete(desc.typeName);
  const source = `return function read(o, p, P, d) {\n  let v;\n${lines.join("\n")}\n  return { ${props.join(", ")} };\n};`;
  st.readers[index] = new Function("R", "X", "V", "limitError", source)(st.readers, st.values, V, limit?.error) as ReadFn;
  return index;
}

/**
 * Statements reading field `f` of object `o` into `to`: its value, or its zero/absent value.
 * With `self`, `o` itself is the field's value (a wrapper's field).
 */
function fieldRead(f: DescField, st: ReaderState, to: string, self = false): string {
  const key = q(f.name);
  const where = self ? "p" : `V.at(p, ${key})`;
  if (f.fieldKind === "map") {
    if (f.mapKey !== ScalarType.STRING) throw new Error(`${f.toString()}: only string map keys are supported in REST JSON`);
    const read = rawJsonValues.has(ruleKey(f)) ? "V.readRawJson" : valueReader(f.mapKind === "message" ? f.message : f.mapKind === "enum" ? f.enum : f.scalar, st);
    return `${to} = {}; v = ${self ? "o" : `V.own(o, ${key})`};
  if (v !== undefined && v !== null) {
    if (!V.isObject(v)) V.wrong(P, ${where}, "an object", v);
    else for (const k of Object.keys(v)) { const x = ${read}(v[k], V.at(${where}, k), P, d); if (x !== V.SKIP) V.setOwn(${to}, k, x); }
  }`;
  }
  if (f.fieldKind === "list") {
    const element = f.listKind === "message" ? f.message : f.listKind === "enum" ? f.enum : f.scalar;
    const union = f.listKind === "message" && unionOneof(f.message) !== undefined;
    const read = valueReader(element, st);
    // A wrong element: scalars read as their zero value, messages are left out, and a union
    // (an action) is kept empty so that validation can name its index (a null one too).
    const empty = f.listKind === "message" ? `R[${readerIndex(f.message, st)}]({}, w, P, d)` : "";
    const onWrong = f.listKind === "message" ? (union ? `${to}.push(${empty});` : "") : `${to}.push(${zeroSource(f)});`;
    const onNull = union ? `if (e === null) { ${to}.push(${empty}); continue; }` : "";
    return `${to} = []; v = V.own(o, ${key});
  if (v !== undefined && v !== null) {
    if (!Array.isArray(v)) V.wrong(P, ${where}, "an array", v);
    else for (let i = 0; i < v.length; i++) { const e = v[i], w = ${where} + "[" + i + "]"; ${onNull}
      const x = ${read}(e, w, P, d); if (x !== V.SKIP) ${to}.push(x); else { ${onWrong} } }
  }`;
  }
  const type = f.fieldKind === "message" ? f.message : f.fieldKind === "enum" ? f.enum : f.scalar;
  const absent = f.fieldKind === "message" || f.presence !== IMPLICIT ? "undefined" : zeroSource(f);
  // Strings and booleans of the right type are taken without a call (or the field's path).
  const fast = type === ScalarType.STRING ? `typeof v === "string"` : type === ScalarType.BOOL ? `typeof v === "boolean"` : undefined;
  return `v = V.own(o, ${key}); if (v === undefined || v === null) ${to} = ${absent};${fast ? ` else if (${fast}) ${to} = v;` : ""} else { ${to} = ${valueReader(type, st)}(v, ${where}, P, d); if (${to} === V.SKIP) ${to} = ${absent}; }`;
}

function zeroSource(f: DescField): string {
  if (f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")) return "0";
  const scalar = f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar") ? f.scalar : undefined;
  return scalar === undefined ? "0" : scalarZero(scalar, "longAsString" in f && f.longAsString === true);
}

/** The source of a function (value, where, problems, depth) => value or V.SKIP. */
function valueReader(type: DescMessage | DescEnum | ScalarType, st: ReaderState): string {
  if (typeof type !== "number") {
    if (type.kind === "message") {
      const r = readerIndex(type, st);
      const kind = messageKind(type);
      // Depth counts nestings of the limited (recursive) types only.
      const next = depthLimits.has(type.typeName) ? 1 : 0;
      const read: V.Read<unknown> = (v, w, P, d = 0) => (V.isObject(v) ? st.readers[r]!(v, w, P, d + next) : V.wrong(P, w, kind, v));
      st.values.push(read);
      return `X[${st.values.length - 1}]`;
    }
    // The names the writer writes: INVALID for the zero value, the others without prefix.
    const numbers = new Map(type.values.map((v) => [v.number === 0 ? invalidEnumName : v.localName, v.number] as const));
    st.values.push(V.readEnum(numbers, `one of ${[...numbers.keys()].join(", ")}`) as V.Read<unknown>);
    return `X[${st.values.length - 1}]`;
  }
  switch (type) {
    case ScalarType.STRING:
      return "V.readString";
    case ScalarType.BOOL:
      return "V.readBool";
    case ScalarType.BYTES:
      return "V.readBytes";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return "V.readNumber";
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return "V.readInt32";
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return "V.readUint32";
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "V.readUint64";
    default:
      return "V.readInt64";
  }
}

// ---- one mapping per message type, made on first use ----

const writers = new Map<string, JsonWriter<Message>>();
const readers = new Map<string, JsonReader<Message>>();

export function jsonWriterFor<T extends Message>(schema: DescMessage): JsonWriter<T> {
  let w = writers.get(schema.typeName);
  if (!w) writers.set(schema.typeName, (w = compileJsonWriter(schema)));
  return w as JsonWriter<T>;
}

export function jsonReaderFor<T extends Message>(schema: DescMessage): JsonReader<T> {
  let r = readers.get(schema.typeName);
  if (!r) readers.set(schema.typeName, (r = compileJsonReader(schema)));
  return r as JsonReader<T>;
}
