import {
  create,
  createFileRegistry,
  equals,
  fromJson,
  ScalarType,
  toJson,
  type DescEnum,
  type DescField,
  type DescMessage,
  type JsonValue as PbJson,
  type Message,
} from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as T, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { TaskCreateRequestSchema, TaskResponseSchema } from "../../src/gen/diego/v1/task_pb.js";
import { compileJsonReader, compileJsonWriter, jsonReaderFor, jsonWriterFor } from "../../src/model/compile-json.js";
import { writeJson, type JsonValue } from "../../src/model/json-writer.js";
import { invalidEnumName, nullWhenAbsent, omitWhenEmpty } from "../../src/model/json-rules.js";
import { decodeTaskCreateRequest, taskResponseToJson } from "../../src/model/task-json.js";

// The generated REST JSON mapping held to protobuf-es's own toJson/fromJson as the oracle, on
// randomized messages. The oracle runs with useProtoFieldName and alwaysEmitImplicit, and its
// output is then adjusted by exactly the rules listed in src/model/json-rules.ts:
//  - 64-bit integers: exact JSON numbers instead of strings of digits;
//  - enum values: prefix stripped, the zero value written as INVALID;
//  - fields in omitWhenEmpty are left out when empty; fields in nullWhenAbsent are null when absent.

const ORACLE = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

const is64 = (s: ScalarType): boolean => [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(s);

function enumOut(e: DescEnum, name: PbJson): string {
  const v = e.values.find((x) => x.name === name);
  return !v || v.number === 0 ? invalidEnumName : v.localName;
}

function isEmpty(v: PbJson): boolean {
  return v === "" || v === 0 || v === false || v === "0" || (Array.isArray(v) && v.length === 0);
}

/** The oracle's JSON adjusted to the REST rules; 64-bit integers as bigint (or kept as strings). */
function adjust(desc: DescMessage, json: { [k: string]: PbJson }, bigints: boolean): { [k: string]: JsonValue } {
  const out: { [k: string]: JsonValue } = {};
  for (const f of desc.fields) {
    const key = `${f.parent.typeName}.${f.name}`;
    const v = json[f.name];
    if (v === undefined) {
      if (f.fieldKind === "message" && !f.oneof && nullWhenAbsent.has(key)) out[f.name] = null;
      continue;
    }
    if (omitWhenEmpty.has(key) && !f.oneof && isEmpty(v)) continue;
    out[f.name] = value(f, v, bigints);
  }
  return out;
}

function value(f: DescField, v: PbJson, bigints: boolean): JsonValue {
  if (f.fieldKind === "list") return (v as PbJson[]).map((e) => element(f.listKind === "message" ? f.message : f.listKind === "enum" ? f.enum : f.scalar, e, bigints));
  if (f.fieldKind === "map") throw new Error("no maps");
  return element(f.fieldKind === "message" ? f.message : f.fieldKind === "enum" ? f.enum : f.scalar, v, bigints);
}

function element(type: DescMessage | DescEnum | ScalarType, v: PbJson, bigints: boolean): JsonValue {
  if (typeof type !== "number") return type.kind === "message" ? adjust(type, v as { [k: string]: PbJson }, bigints) : enumOut(type, v);
  if (is64(type) && bigints) return BigInt(v as string);
  return v as JsonValue;
}

// ---- random messages, from the descriptor ----

let seed = 12345;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
// No lone surrogates: protobuf-es refuses them (test/model/task-json.test.ts covers writing them).
const pieces = ["", "", "a", "/bin/sh", 'q"', "\\", "\n", "✓", "\u0000", "𝄞", "0", "TASK"];
const randomString = (): string => Array.from({ length: rand(4) }, () => pieces[rand(pieces.length)]).join("");

function randomScalar(s: ScalarType): unknown {
  switch (s) {
    case ScalarType.STRING:
      return randomString();
    case ScalarType.BOOL:
      return rand(2) === 1;
    case ScalarType.INT32:
      return [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)][rand(5)];
    case ScalarType.UINT32:
      return [0, 1, 2 ** 32 - 1][rand(3)];
    case ScalarType.INT64:
      return [0n, 1n, -(2n ** 63n), 2n ** 63n - 1n, 1_795_456_641_098_704_719n][rand(5)];
    case ScalarType.UINT64:
      // REST JSON reads uint64 as a JSON number, exact up to 2^53 - 1.
      return [0n, 1n, 2n ** 53n - 1n][rand(3)];
    default:
      throw new Error(`no random ${ScalarType[s]}`);
  }
}

function randomMessage(desc: DescMessage, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const o of desc.oneofs) {
    const pick = depth > 3 ? undefined : o.fields[rand(o.fields.length + 1)];
    init[o.localName] = pick ? { case: pick.localName, value: randomField(pick, depth) } : { case: undefined };
  }
  for (const f of desc.fields) {
    if (f.oneof) continue;
    if (f.fieldKind === "list") init[f.localName] = depth > 3 ? [] : Array.from({ length: rand(3) }, () => randomValue(f.listKind === "message" ? f.message : f.listKind === "enum" ? f.enum : f.scalar, depth));
    else if (f.fieldKind === "message") init[f.localName] = rand(3) === 0 || depth > 3 ? undefined : randomMessage(f.message, depth + 1);
    else if (f.fieldKind === "map") throw new Error("no maps");
    else if (f.presence !== 2 && rand(2) === 0) init[f.localName] = undefined;
    else init[f.localName] = randomField(f, depth);
  }
  return create(desc, init) as unknown as Record<string, unknown>;
}

function randomField(f: DescField, depth: number): unknown {
  if (f.fieldKind === "message") return randomMessage(f.message, depth + 1);
  if (f.fieldKind === "enum") return randomValue(f.enum, depth);
  if (f.fieldKind === "scalar") return randomScalar(f.scalar);
  throw new Error("not a singular field");
}

function randomValue(type: DescMessage | DescEnum | ScalarType, depth: number): unknown {
  if (typeof type === "number") return randomScalar(type);
  if (type.kind === "message") return randomMessage(type, depth + 1);
  return type.values[rand(type.values.length)]!.number;
}

/** Both directions of the generated mapping, held to the oracle for one message. */
function holdsToOracle(desc: DescMessage, msg: Message, write: (m: Message) => string, read: (j: unknown) => Message): void {
  const oracle = toJson(desc, msg, ORACLE) as { [k: string]: PbJson };
  expect(write(msg)).toBe(writeJson(adjust(desc, oracle, true)));
  // Reading: REST JSON (64-bit integers as digit strings, which it accepts) gives what fromJson
  // gives for the oracle's own JSON.
  const decoded = read(adjust(desc, oracle, false));
  expect(equals(desc, decoded, fromJson(desc, toJson(desc, msg)))).toBe(true);
}

describe("the REST JSON mapping, generated from the descriptors", () => {
  it("writes and reads 500 random tasks as protobuf-es's toJson/fromJson do, with the listed adjustments", () => {
    for (let i = 0; i < 500; i++) {
      const msg = randomMessage(TaskResponseSchema, 0) as unknown as Message;
      holdsToOracle(TaskResponseSchema, msg, taskResponseToJson as (m: Message) => string, jsonReaderFor(TaskResponseSchema));
    }
  });

  it("reads 500 random create requests as fromJson does", () => {
    for (let i = 0; i < 500; i++) {
      const msg = randomMessage(TaskCreateRequestSchema, 0) as unknown as Message;
      holdsToOracle(TaskCreateRequestSchema, msg, jsonWriterFor(TaskCreateRequestSchema), decodeTaskCreateRequest as (j: unknown) => Message);
    }
  });
});

// ---- a message the product does not have: its mapping comes from naming it ----

const field = (name: string, number: number, type: T, more: Record<string, unknown> = {}) => ({
  name,
  number,
  type,
  label: Label.OPTIONAL,
  jsonName: name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
  ...more,
});

/** A test-only proto3 file, as `proto/` would hold it; `extra` fields are "added to the schema". */
function testOnlySchema(extra: ReturnType<typeof field>[]): DescMessage {
  const file = create(FileDescriptorProtoSchema, {
    name: "testonly/v1/widget.proto",
    package: "testonly.v1",
    syntax: "proto3",
    enumType: [{ name: "Shade", value: [{ name: "SHADE_UNSPECIFIED", number: 0 }, { name: "SHADE_DARK", number: 1 }, { name: "SHADE_LIGHT", number: 2 }] }],
    messageType: [
      { name: "Part", field: [field("label", 1, T.STRING), field("weight", 2, T.UINT32)] },
      {
        name: "Widget",
        field: [
          field("widget_id", 1, T.STRING),
          field("shade", 2, T.ENUM, { typeName: ".testonly.v1.Shade" }),
          field("made_at", 3, T.INT64),
          field("parts", 4, T.MESSAGE, { typeName: ".testonly.v1.Part", label: Label.REPEATED }),
          field("main_part", 5, T.MESSAGE, { typeName: ".testonly.v1.Part" }),
          field("tags", 6, T.STRING, { label: Label.REPEATED }),
          field("broken", 7, T.BOOL),
          ...extra,
        ],
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getMessage("testonly.v1.Widget")!;
}

describe("a new message or field needs no JSON code", () => {
  it("a test-only message round-trips through its generated REST JSON, held to the oracle", () => {
    const schema = testOnlySchema([]);
    const write = compileJsonWriter(schema);
    const read = compileJsonReader(schema);
    for (let i = 0; i < 200; i++) holdsToOracle(schema, randomMessage(schema, 0) as unknown as Message, write, read);
    const widget = create(schema, { widgetId: "w-1", shade: 2, madeAt: 2n ** 62n, parts: [{ label: "a", weight: 3 }], tags: ["x"] } as never);
    const text = write(widget);
    expect(text).toBe('{"widget_id":"w-1","shade":"LIGHT","made_at":4611686018427387904,"parts":[{"label":"a","weight":3}],"tags":["x"],"broken":false}');
  });

  it("a field added to the test-only message is written and read with no other code", () => {
    const schema = testOnlySchema([field("spare_ns", 8, T.INT64), field("notes", 9, T.STRING, { label: Label.REPEATED })]);
    const write = compileJsonWriter(schema);
    const read = compileJsonReader(schema);
    const widget = create(schema, { widgetId: "w-2", spareNs: 9_000_000_000_000_000_001n, notes: ["n1", "n\"2"] } as never);
    const text = write(widget);
    expect(text).toContain('"spare_ns":9000000000000000001,"notes":["n1","n\\"2"]');
    expect(equals(schema, read(JSON.parse(text.replace("9000000000000000001", '"9000000000000000001"'))), widget)).toBe(true);
    for (let i = 0; i < 100; i++) holdsToOracle(schema, randomMessage(schema, 0) as unknown as Message, write, read);
  });

  it("reading the new field names it when its JSON type is wrong", () => {
    const read = compileJsonReader(testOnlySchema([field("spare_ns", 8, T.INT64)]));
    expect(() => read({ widget_id: 5, spare_ns: "soon" })).toThrow(
      "field 'widget_id' must be a string, got the number 5; field 'spare_ns' must be an integer, got a string",
    );
  });

  it("a recursive message without a nesting limit is refused when its mapping is compiled", () => {
    const schema = testOnlySchema([field("inner", 8, T.MESSAGE, { typeName: ".testonly.v1.Widget" })]);
    expect(() => compileJsonReader(schema)).toThrow(/testonly\.v1\.Widget is recursive/);
  });
});
