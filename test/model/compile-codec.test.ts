import { create, createFileRegistry, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ActionSchema } from "../../src/gen/diego/v1/actions_pb.js";
import { TaskRecordSchema, type TaskRecord } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskCreateRequestSchema, TaskResponseSchema, TaskState, type TaskCreateRequest } from "../../src/gen/diego/v1/task_pb.js";
import { compileDecoder } from "../../src/model/compile-decoder.js";
import { compileEncoder } from "../../src/model/compile-encoder.js";
import { decodeRecord, encodeRecord } from "../../src/store/index.js";

// The store and the gRPC path encode and decode with compiled codecs instead of protobuf-es's
// toBinary/fromBinary. They must agree with protobuf-es exactly, whatever the message holds, or
// other readers would see different tasks.

const long = "x".repeat(300);
const unicode = "héllo wörld ✓ 𝄞";

function richRecord(): TaskRecord {
  return create(TaskRecordSchema, {
    task: {
      taskGuid: "guid-1",
      domain: unicode,
      stack: "lucid64",
      rootFs: "docker:///busybox",
      env: [
        { name: "A", value: long },
        { name: "B", value: "" },
      ],
      cpuWeight: 100,
      diskMb: 2 ** 31 - 1,
      memoryMb: 128,
      privileged: true,
      action: create(ActionSchema, {
        action: {
          case: "serial",
          value: {
            actions: [
              { action: { case: "run", value: { path: "/bin/sh", args: ["-c", long, unicode], user: "vcap", resourceLimits: { nofile: 0n } } } },
              { action: { case: "download", value: { from: "http://x/y.tgz", to: "/tmp", cacheKey: "k", user: "root" } } },
              {
                action: {
                  case: "timeout",
                  value: { timeout: 123_456_789_012n, action: { action: { case: "emitProgress", value: { startMessage: "s", action: { action: { case: "run", value: { path: "/bin/true" } } } } } } },
                },
              },
              { action: { case: "parallel", value: { actions: [] } } },
            ],
          },
        },
      }),
      resultFile: "/tmp/result",
      completionCallbackUrl: "http://127.0.0.1:1/cb",
      logGuid: "log",
      logSource: "SRC",
      annotation: long + unicode,
      securityGroupRules: [{ protocol: "tcp", destination: "0.0.0.0/0", portRange: { start: 1, end: 65535 } }],
      state: TaskState.COMPLETED,
      cellId: "cell-1",
      failed: true,
      failureReason: "boom",
      result: long,
      createdAt: 1_700_000_000_123_456_789n,
    },
    updatedAt: 2n ** 63n - 1n,
    firstCompletedAt: 1n,
    cellSessionId: "session",
    placementAttempts: 3,
  });
}

describe("compiled protobuf encoder", () => {
  it("writes the same bytes as toBinary for a record using every kind of field", () => {
    const r = richRecord();
    expect(Buffer.from(encodeRecord(r)).toString("hex")).toBe(Buffer.from(toBinary(TaskRecordSchema, r)).toString("hex"));
    expect(fromBinary(TaskRecordSchema, encodeRecord(r))).toEqual(r);
  });

  it("writes an empty record as zero bytes, as toBinary does", () => {
    const r = create(TaskRecordSchema, {});
    expect(Buffer.from(encodeRecord(r)).equals(Buffer.from(toBinary(TaskRecordSchema, r)))).toBe(true);
    expect(encodeRecord(r).length).toBe(0);
  });

  it("handles nested messages longer than 127 and 16,383 bytes (multi-byte lengths)", () => {
    for (const size of [126, 127, 128, 16_383, 16_384, 70_000]) {
      const r = richRecord();
      r.task!.result = "r".repeat(size);
      r.task!.env = [{ $typeName: "diego.v1.EnvironmentVariable", name: "N", value: "v".repeat(size) }];
      expect(Buffer.from(encodeRecord(r)).equals(Buffer.from(toBinary(TaskRecordSchema, r)))).toBe(true);
    }
  });

  it("encodes negative and huge integers like toBinary", () => {
    const encode = compileEncoder<TaskRecord>(TaskRecordSchema);
    const r = richRecord();
    r.placementAttempts = -5;
    r.updatedAt = -1n;
    r.task!.createdAt = -(2n ** 63n);
    expect(Buffer.from(encode(r)).equals(Buffer.from(toBinary(TaskRecordSchema, r)))).toBe(true);
  });

  it("keeps working after an encode that failed half way", () => {
    const r = richRecord();
    const bad = richRecord();
    (bad.task as unknown as { createdAt: unknown }).createdAt = "not a number";
    expect(() => encodeRecord(bad)).toThrow();
    expect(Buffer.from(encodeRecord(r)).equals(Buffer.from(toBinary(TaskRecordSchema, r)))).toBe(true);
  });
});

/** A message with one field, and one repeated (packed) field, of every scalar type. */
function everyScalarMessage(): DescMessage {
  const T = FieldDescriptorProto_Type;
  const types = [T.DOUBLE, T.FLOAT, T.INT64, T.UINT64, T.INT32, T.FIXED64, T.FIXED32, T.BOOL, T.STRING, T.BYTES, T.UINT32, T.SFIXED32, T.SFIXED64, T.SINT32, T.SINT64];
  const field = types.flatMap((type, i) => [
    { name: `f${i}`, number: i + 1, type, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: `f${i}` },
    { name: `r${i}`, number: i + 101, type, label: FieldDescriptorProto_Label.REPEATED, jsonName: `r${i}` },
  ]);
  const file = create(FileDescriptorProtoSchema, { name: "scalars.proto", package: "t", syntax: "proto3", messageType: [{ name: "Scalars", field }] });
  return createFileRegistry(file, () => undefined).getMessage("t.Scalars")!;
}

describe("compiled codecs on every scalar type", () => {
  it("write and read doubles, floats, fixed-width, zigzag and 64-bit fields as protobuf-es does", () => {
    const desc = everyScalarMessage();
    const values = [1.5, -0.25, -(2n ** 63n), 2n ** 64n - 1n, -7, 2n ** 64n - 2n, 4_000_000_000, true, "s✓", new Uint8Array([0, 255]), 4_000_000_000, -2_000_000_000, -(2n ** 62n), -1234, -(2n ** 40n)];
    const init: Record<string, unknown> = {};
    values.forEach((v, i) => {
      init[`f${i}`] = v;
      init[`r${i}`] = [v, v];
    });
    const msg = create(desc, init);
    const expected = toBinary(desc, msg);
    expect(Buffer.from(compileEncoder(desc)(msg)).equals(Buffer.from(expected))).toBe(true);
    expect(compileDecoder(desc)(expected)).toEqual(fromBinary(desc, expected));
  });
});

describe("compiled protobuf decoder", () => {
  const decodeRequest = compileDecoder<TaskCreateRequest>(TaskCreateRequestSchema);

  it("reads back exactly what fromBinary reads, for every kind of field", () => {
    const bytes = toBinary(TaskRecordSchema, richRecord());
    expect(decodeRecord(bytes)).toEqual(fromBinary(TaskRecordSchema, bytes));
    expect(decodeRecord(bytes)).toEqual(richRecord());
  });

  it("reads 64-bit integers of every varint length and sign as fromBinary does", () => {
    const values = [0n, 1n, 127n, 128n, 2n ** 28n - 1n, 2n ** 28n, 2n ** 32n + 5n, 2n ** 35n, 2n ** 49n + 3n];
    values.push(2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 56n, 1_795_456_641_098_704_719n, 2n ** 63n - 1n, -1n, -(2n ** 63n));
    for (const v of values) {
      const r = richRecord();
      r.updatedAt = v;
      r.task!.createdAt = -v - 1n; // the other sign, within int64
      const bytes = encodeRecord(r);
      expect(Buffer.from(bytes).equals(Buffer.from(toBinary(TaskRecordSchema, r)))).toBe(true);
      expect(decodeRecord(bytes)).toEqual(fromBinary(TaskRecordSchema, bytes));
      expect(decodeRecord(bytes).updatedAt).toBe(v);
    }
    // An 11-byte varint is not a varint.
    const tooLong = new Uint8Array([0x10, ...Array<number>(10).fill(0xff), 0x01]);
    expect(() => decodeRecord(tooLong)).toThrow(/longer than 10 bytes/);
  });

  it("gives an empty input every field at its default, like create()", () => {
    expect(decodeRecord(new Uint8Array(0))).toEqual(create(TaskRecordSchema));
    expect(decodeRequest(new Uint8Array(0))).toEqual(create(TaskCreateRequestSchema));
  });

  it("keeps fields it does not know, so re-encoding loses nothing", () => {
    // A TaskResponse carries fields (state, result, ...) that a TaskCreateRequest lacks.
    const bytes = toBinary(TaskResponseSchema, richRecord().task!);
    const decoded = decodeRequest(bytes);
    expect(decoded).toEqual(fromBinary(TaskCreateRequestSchema, bytes));
    expect(decoded.$unknown?.length).toBeGreaterThan(0);
    expect(toBinary(TaskCreateRequestSchema, decoded)).toEqual(bytes);
  });

  it("merges a message field that appears twice, as protobuf requires", () => {
    const a = toBinary(TaskRecordSchema, create(TaskRecordSchema, { task: { taskGuid: "g", domain: "d" } }));
    const b = toBinary(TaskRecordSchema, create(TaskRecordSchema, { task: { stack: "s" } }));
    const both = new Uint8Array([...a, ...b]);
    expect(decodeRecord(both)).toEqual(fromBinary(TaskRecordSchema, both));
    expect(decodeRecord(both).task).toMatchObject({ taskGuid: "g", domain: "d", stack: "s" });
  });

  it("rejects truncated input and invalid UTF-8 instead of making up a task", () => {
    const bytes = toBinary(TaskRecordSchema, richRecord());
    for (const cut of [1, 7, 100, bytes.length - 1]) {
      expect(() => fromBinary(TaskRecordSchema, bytes.subarray(0, cut))).toThrow();
      expect(() => decodeRecord(bytes.subarray(0, cut))).toThrow();
    }
    const badUtf8 = new Uint8Array([0x0a, 0x02, 0xc3, 0x28]); // task_guid = invalid two-byte sequence
    expect(() => fromBinary(TaskCreateRequestSchema, badUtf8)).toThrow();
    expect(() => decodeRequest(badUtf8)).toThrow();
  });

  it("stops at 100 levels of nesting instead of exhausting the stack", () => {
    let action = create(ActionSchema, { action: { case: "run", value: { path: "/bin/true" } } });
    for (let i = 0; i < 150; i++) action = create(ActionSchema, { action: { case: "try", value: { action } } });
    const bytes = toBinary(TaskCreateRequestSchema, create(TaskCreateRequestSchema, { taskGuid: "deep", action }));
    expect(() => decodeRequest(bytes)).toThrow(/nested more than 100 deep/);
  });
});
