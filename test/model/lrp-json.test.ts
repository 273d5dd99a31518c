import { create, createFileRegistry, equals, fromJson, toJson } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as FT, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ActualLRPSchema, ActualLrpState, DesiredLRPResponseSchema, WatchLRPsResponseSchema } from "../../src/gen/diego/v1/lrp_pb.js";
import {
  actualLRPFromJson,
  actualLRPToJson,
  decodeDesiredLRPCreateRequest,
  decodeDesiredLRPUpdateRequest,
  desiredLRPFromJson,
  desiredLRPToJson,
  lrpEventToSse,
} from "../../src/model/lrp-json.js";
import { compileJsonReader, compileJsonWriter } from "../../src/model/compile-json.js";
import { newDesired } from "../../src/store/lrp-store.js";

// The LRP REST JSON as the 2015 receptor wrote it (reference 1.7, 3.1, 2.8), from the
// descriptors alone: keys, their order, what is left out or null when empty.

// vizzini's base LRP (reference 11.1).
const vizzini = {
  process_guid: "lrp-guid",
  domain: "vizzini-1",
  instances: 1,
  rootfs: "preloaded:cflinuxfs2",
  setup: { serial: { actions: [{ download: { from: "http://onsi-public.s3.amazonaws.com/grace.tar.gz", to: ".", cache_key: "grace", user: "vcap" } }] } },
  action: {
    run: {
      path: "./grace",
      user: "vcap",
      env: [
        { name: "PORT", value: "8080" },
        { name: "ACTION_LEVEL", value: "COYOTE" },
      ],
    },
  },
  monitor: { run: { path: "nc", args: ["-z", "0.0.0.0", "8080"], user: "vcap" } },
  memory_mb: 128,
  disk_mb: 128,
  cpu_weight: 100,
  ports: [8080],
  routes: { "cf-router": [{ hostnames: ["lrp-guid.example.com"], port: 8080 }] },
  log_guid: "lrp-guid",
  log_source: "VIZ",
  annotation: "arbitrary-data",
};

const DESIRED_KEYS_2015 = [
  "process_guid",
  "domain",
  "rootfs",
  "instances",
  "env",
  "setup",
  "action",
  "monitor",
  "start_timeout",
  "disk_mb",
  "memory_mb",
  "cpu_weight",
  "privileged",
  "ports",
  "routes",
  "log_guid",
  "log_source",
  "metrics_guid",
  "annotation",
  "egress_rules",
  "modification_tag",
];

describe("DesiredLRP REST JSON", () => {
  it("writes vizzini's LRP back as sent, in 2015's key order, with its modification_tag", () => {
    const d = newDesired(decodeDesiredLRPCreateRequest(vizzini), "9e6f2a3c-0000-4000-8000-000000000001");
    const text = desiredLRPToJson(d);
    const json = JSON.parse(text) as Record<string, unknown>;
    // Empty env and egress_rules are left out, as 2015 did; nothing else is.
    expect(Object.keys(json)).toEqual(DESIRED_KEYS_2015.filter((k) => k !== "env" && k !== "egress_rules"));
    expect(json).toEqual({
      ...vizzini,
      start_timeout: 0,
      privileged: false,
      metrics_guid: "",
      modification_tag: { epoch: "9e6f2a3c-0000-4000-8000-000000000001", index: 0 },
    });
    // Read back, it is the same message.
    expect(equals(DesiredLRPResponseSchema, desiredLRPFromJson(JSON.parse(text)), d)).toBe(true);
  });

  it("writes null for an absent setup and monitor, [] for no ports, and leaves out empty routes and annotation", () => {
    const d = newDesired(decodeDesiredLRPCreateRequest({ process_guid: "p", domain: "d", rootfs: "docker:///busybox", action: { run: { path: "/bin/httpd" } }, routes: {} }), "e");
    expect(desiredLRPToJson(d)).toBe(
      '{"process_guid":"p","domain":"d","rootfs":"docker:///busybox","instances":0,"setup":null,"action":{"run":{"path":"/bin/httpd","user":""}},"monitor":null,' +
        '"start_timeout":0,"disk_mb":0,"memory_mb":0,"cpu_weight":0,"privileged":false,"ports":[],"log_guid":"","log_source":"","metrics_guid":"","modification_tag":{"epoch":"e","index":0}}',
    );
  });

  it("keeps each route's value as JSON, compacted, whatever its shape; a __proto__ key is data", () => {
    const body = JSON.parse('{"routes": {"tcp-router": [ {"external_port": 5222, "container_port": 5222} ], "diego-ssh": {"x": [1, 2.5, null, "s"]}, "__proto__": true}}');
    const req = decodeDesiredLRPCreateRequest(body);
    expect(req.routes?.entries).toEqual({ "tcp-router": '[{"external_port":5222,"container_port":5222}]', "diego-ssh": '{"x":[1,2.5,null,"s"]}', ["__proto__"]: "true" });
    expect(Object.getPrototypeOf(req.routes!.entries)).toBe(Object.prototype);
    const written = JSON.parse(desiredLRPToJson(newDesired(req, "e"))) as { routes: unknown };
    expect(written.routes).toEqual(body.routes);
  });

  it("names every wrong JSON type at once", () => {
    expect(() => decodeDesiredLRPCreateRequest({ instances: "2", routes: ["cf-router"], ports: [8080, -1], start_timeout: -1, setup: "run" })).toThrow(
      "field 'instances' must be an integer, got the string \"2\"; field 'setup' must be an action object, got a string; field 'start_timeout' must be a non-negative integer, got the number -1; " +
        "field 'ports[1]' must be a non-negative integer, got the number -1; field 'routes' must be an object, got an array",
    );
    expect(() => decodeDesiredLRPUpdateRequest({ instances: 1.5, annotation: 3 })).toThrow("field 'instances' must be an integer, got the number 1.5; field 'annotation' must be a string, got the number 3");
  });
});

describe("ActualLRP REST JSON", () => {
  const since = 1_444_162_391_918_406_789n;

  it("an UNCLAIMED instance: ports null, empty crash_reason and placement_error left out, since exact", () => {
    const a = create(ActualLRPSchema, { processGuid: "p", domain: "d", index: 2, state: ActualLrpState.UNCLAIMED, since, modificationTag: { epoch: "e", index: 3 } });
    const text = actualLRPToJson(a);
    expect(text).toBe(
      '{"process_guid":"p","instance_guid":"","cell_id":"","domain":"d","index":2,"address":"","ports":null,"state":"UNCLAIMED","crash_count":0,"since":1444162391918406789,"evacuating":false,"modification_tag":{"epoch":"e","index":3}}',
    );
    expect(equals(ActualLRPSchema, actualLRPFromJson(JSON.parse(text.replace("1444162391918406789", '"1444162391918406789"'))), a)).toBe(true);
  });

  it("a RUNNING instance: ports as [{container_port, host_port}], host_port left out when 0", () => {
    const a = create(ActualLRPSchema, {
      processGuid: "p",
      instanceGuid: "ig",
      cellId: "cell-1",
      domain: "d",
      index: 0,
      address: "10.10.0.5",
      ports: [
        { containerPort: 8080, hostPort: 61001 },
        { containerPort: 9999, hostPort: 0 },
      ],
      state: ActualLrpState.RUNNING,
      crashCount: 1,
      crashReason: "Exited with status 17",
      since,
      modificationTag: { epoch: "e", index: 4 },
    });
    const json = JSON.parse(actualLRPToJson(a)) as Record<string, unknown>;
    expect(json.ports).toEqual([{ container_port: 8080, host_port: 61001 }, { container_port: 9999 }]);
    expect(json.state).toBe("RUNNING");
    expect(json.crash_reason).toBe("Exited with status 17");
    expect(Object.keys(json)).toEqual([
      "process_guid",
      "instance_guid",
      "cell_id",
      "domain",
      "index",
      "address",
      "ports",
      "state",
      "crash_count",
      "crash_reason",
      "since",
      "evacuating",
      "modification_tag",
    ]);
  });

  it.each([
    [ActualLrpState.CLAIMED, "CLAIMED"],
    [ActualLrpState.CRASHED, "CRASHED"],
    [0, "INVALID"],
  ])("state %i is written %s", (state, name) => {
    expect(JSON.parse(actualLRPToJson(create(ActualLRPSchema, { state }))).state).toBe(name);
  });

  it("a placement error is written when set", () => {
    const json = JSON.parse(actualLRPToJson(create(ActualLRPSchema, { state: ActualLrpState.UNCLAIMED, placementError: "insufficient resources" })));
    expect(json.placement_error).toBe("insufficient resources");
  });
});

describe("LRP events", () => {
  it("are named as 2015's and carry its payload keys", () => {
    const before = create(ActualLRPSchema, { processGuid: "p", state: ActualLrpState.CLAIMED });
    const after = create(ActualLRPSchema, { processGuid: "p", state: ActualLrpState.RUNNING, address: "1.2.3.4" });
    const changed = lrpEventToSse(create(WatchLRPsResponseSchema, { event: { case: "actualLrpChanged", value: { actualLrpBefore: before, actualLrpAfter: after } } }));
    expect(changed?.name).toBe("actual_lrp_changed");
    const data = JSON.parse(changed!.data) as Record<string, { state: string }>;
    expect(Object.keys(data)).toEqual(["actual_lrp_before", "actual_lrp_after"]);
    expect([data.actual_lrp_before!.state, data.actual_lrp_after!.state]).toEqual(["CLAIMED", "RUNNING"]);
    const d = newDesired(decodeDesiredLRPCreateRequest(vizzini), "e");
    const created = lrpEventToSse(create(WatchLRPsResponseSchema, { event: { case: "desiredLrpCreated", value: { desiredLrp: d } } }));
    expect(created?.name).toBe("desired_lrp_created");
    expect(created?.data).toBe(`{"desired_lrp":${desiredLRPToJson(d)}}`);
    expect(lrpEventToSse(create(WatchLRPsResponseSchema, {}))).toBeUndefined();
  });
});

// ---- the map support in compile-json.ts, held to protobuf-es's JSON on a test-only message ----


describe("map fields in the generated REST JSON", () => {
  const file = create(FileDescriptorProtoSchema, {
    name: "testonly/v1/maps.proto",
    package: "testonly.v1",
    syntax: "proto3",
    messageType: [
      { name: "Part", field: [{ name: "label", number: 1, type: FT.STRING, label: Label.OPTIONAL, jsonName: "label" }] },
      {
        name: "Bag",
        field: [
          { name: "counts", number: 1, type: FT.MESSAGE, typeName: ".testonly.v1.Bag.CountsEntry", label: Label.REPEATED, jsonName: "counts" },
          { name: "parts", number: 2, type: FT.MESSAGE, typeName: ".testonly.v1.Bag.PartsEntry", label: Label.REPEATED, jsonName: "parts" },
        ],
        nestedType: [
          {
            name: "CountsEntry",
            options: { mapEntry: true },
            field: [
              { name: "key", number: 1, type: FT.STRING, label: Label.OPTIONAL, jsonName: "key" },
              { name: "value", number: 2, type: FT.INT32, label: Label.OPTIONAL, jsonName: "value" },
            ],
          },
          {
            name: "PartsEntry",
            options: { mapEntry: true },
            field: [
              { name: "key", number: 1, type: FT.STRING, label: Label.OPTIONAL, jsonName: "key" },
              { name: "value", number: 2, type: FT.MESSAGE, typeName: ".testonly.v1.Part", label: Label.OPTIONAL, jsonName: "value" },
            ],
          },
        ],
      },
    ],
  });
  const schema = createFileRegistry(file, () => undefined).getMessage("testonly.v1.Bag")!;

  it("writes and reads maps of scalars and messages as protobuf-es does", () => {
    const bag = fromJson(schema, { counts: { a: 1, "b\"q": -2, "✓": 0 }, parts: { x: { label: "one" }, y: {} } });
    const text = compileJsonWriter(schema)(bag);
    expect(JSON.parse(text)).toEqual(toJson(schema, bag, { useProtoFieldName: true, alwaysEmitImplicit: true }));
    expect(equals(schema, compileJsonReader(schema)(JSON.parse(text)), bag)).toBe(true);
    expect(compileJsonWriter(schema)(create(schema))).toBe('{"counts":{},"parts":{}}');
  });

  it("names a wrong type inside a map by its key", () => {
    expect(() => compileJsonReader(schema)({ counts: { a: "1" }, parts: [] })).toThrow(
      "field 'counts.a' must be an integer, got the string \"1\"; field 'parts' must be an object, got an array",
    );
  });
});
