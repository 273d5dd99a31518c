import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subjects } from "../../src/nats/index.js";
import { transitions } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid, type ErrorBody, type RestClient, type RestReply } from "./rest-client.js";
import { connectStore, type StoreClient } from "./store-client.js";

// The receptor's REST API against the contract (sections 3 and 4) and the 2015 acceptance cases
// (reference section 8.1-8.4). One nats-server and one receptor serve the whole file; every test
// uses its own task guids.

type Json = Record<string, unknown>;

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let api: RestClient;
let cell: StoreClient;
const statusesSeen: number[] = [];

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  // Every answer of the file is recorded: the last test checks none was a 500.
  api = createRestClient(receptor.url, { onReply: (r) => statusesSeen.push(r.status) });
  cell = await connectStore(nats.url, "validation-cell");
});

afterAll(async () => {
  await cell?.close();
  await receptor?.stop();
  await nats?.dispose();
});

const validTask = (extra: Json = {}, guid = uniqueGuid("v")): Json => ({
  task_guid: guid,
  domain: "test-domain",
  stack: "lucid64",
  action: { run: { path: "/bin/echo", args: ["hi"] } },
  ...extra,
});

const run = (path = "/bin/true"): Json => ({ run: { path } });

function expectJsonHeaders(reply: RestReply): void {
  expect(reply.headers.get("content-type")).toBe("application/json");
  expect(reply.headers.get("content-length")).toBe(String(Buffer.byteLength(reply.text)));
}

function expectError(reply: RestReply, status: number, name: string, message?: string): ErrorBody {
  expect({ status: reply.status, text: reply.text }).toMatchObject({ status });
  expectJsonHeaders(reply);
  const body = reply.json<ErrorBody>();
  expect(Object.keys(body).sort()).toEqual(["message", "name"]);
  expect(body.name).toBe(name);
  if (message !== undefined) expect(body.message).toBe(message);
  return body;
}

async function expectCreated(body: Json): Promise<void> {
  const reply = await api.createTask(body);
  expect({ status: reply.status, text: reply.text }).toEqual({ status: 201, text: "" });
  expect(reply.headers.get("content-length")).toBe("0");
}

async function expectInvalidTask(body: Json | string, message: string): Promise<void> {
  expectError(await api.createTask(body), 400, "InvalidTask", message);
}

async function expectInvalidJson(body: string, naming?: string): Promise<void> {
  const err = expectError(await api.createTask(body), 400, "InvalidJSON");
  if (naming) expect(err.message).toContain(naming);
}

async function getJson(guid: string): Promise<Json> {
  const reply = await api.getTask(guid);
  expect(reply.status).toBe(200);
  expectJsonHeaders(reply);
  return reply.json<Json>();
}

const F = (...fields: string[]): string => fields.map((f) => `Invalid field: ${f}`).join(", ");

describe("GET /v1/tasks", () => {
  it("answers [] with JSON headers when there are no tasks", async () => {
    const reply = await api.request("GET", "/v1/tasks");
    expect(reply.status).toBe(200);
    expect(reply.text).toBe("[]");
    expectJsonHeaders(reply);
  });

  it("lists one domain's tasks through ?domain= and /v1/domains/D/tasks, and all tasks without it", async () => {
    const domain = uniqueGuid("domain");
    const other = uniqueGuid("other-domain");
    const [g1, g2, g3] = [uniqueGuid("d1"), uniqueGuid("d2"), uniqueGuid("d3")];
    await expectCreated(validTask({ domain }, g1));
    await expectCreated(validTask({ domain: other }, g2));
    await expectCreated(validTask({ domain }, g3));

    const guids = async (path: string): Promise<string[]> => {
      const reply = await api.request("GET", path);
      expect(reply.status).toBe(200);
      expectJsonHeaders(reply);
      return reply.json<Json[]>().map((t) => t.task_guid as string);
    };
    expect((await guids(`/v1/tasks?domain=${domain}`)).sort()).toEqual([g1, g3].sort());
    expect((await guids(`/v1/domains/${domain}/tasks`)).sort()).toEqual([g1, g3].sort());
    expect(await guids(`/v1/domains/${other}/tasks`)).toEqual([g2]);
    expect(await guids(`/v1/tasks?domain=${uniqueGuid("empty-domain")}`)).toEqual([]);
    expect(await guids(`/v1/domains/${uniqueGuid("empty-domain")}/tasks`)).toEqual([]);
    expect(await guids("/v1/tasks")).toEqual(expect.arrayContaining([g1, g2, g3]));
  });

  it("finds a domain with spaces, slashes and non-ASCII characters through either route", async () => {
    const domain = `space & slash/ü ${uniqueGuid()}`;
    const guid = uniqueGuid("odd-domain");
    await expectCreated(validTask({ domain }, guid));
    for (const path of [`/v1/tasks?domain=${encodeURIComponent(domain)}`, `/v1/domains/${encodeURIComponent(domain)}/tasks`]) {
      const reply = await api.request("GET", path);
      expect(reply.json<Json[]>().map((t) => t.task_guid)).toEqual([guid]);
    }
  });
});

describe("POST /v1/tasks: success", () => {
  it("answers 201 with an empty body; the task is PENDING with no cell and not failed", async () => {
    const guid = uniqueGuid("create");
    await expectCreated(validTask({}, guid));
    const task = await getJson(guid);
    expect(task).toMatchObject({
      task_guid: guid,
      domain: "test-domain",
      stack: "lucid64",
      state: "PENDING",
      cell_id: "",
      failed: false,
      failure_reason: "",
      result: "",
    });
  });

  it("writes created_at as an exact integer of nanoseconds taken at creation", async () => {
    const digits: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      const guid = uniqueGuid("created-at");
      const before = BigInt(Date.now()) * 1_000_000n;
      await expectCreated(validTask({}, guid));
      const after = BigInt(Date.now()) * 1_000_000n;
      const reply = await api.getTask(guid);
      const m = /"created_at":(-?[0-9.eE+-]+)[,}]/.exec(reply.text);
      expect(m?.[1]).toMatch(/^[1-9][0-9]{18}$/);
      const createdAt = BigInt(m![1]!);
      // The wall clock has millisecond resolution: allow one tick on either side.
      expect(createdAt).toBeGreaterThanOrEqual(before - 1_000_000n);
      expect(createdAt).toBeLessThanOrEqual(after + 1_000_000n);
      // Reading it again gives the same digits.
      expect((await api.getTask(guid)).text).toContain(`"created_at":${createdAt}`);
      digits.push(createdAt);
    }
    // A value that went through a double would be a multiple of 256 at this magnitude.
    expect(digits.some((d) => d % 256n !== 0n)).toBe(true);
    expect(new Set(digits).size).toBe(digits.length);
  });

  it("round-trips every TaskCreateRequest field of the seeds with the same names and JSON types", async () => {
    const guid = uniqueGuid("seed");
    // The seeds' example request, with values the contract accepts.
    const request: Json = {
      task_guid: guid,
      domain: "some-domain",
      stack: "lucid64",
      root_fs: "docker:///docker-org/docker-image#docker-tag",
      env: [
        { name: "ENV_NAME_A", value: "ENV_VALUE_A" },
        { name: "ENV_NAME_B", value: "ENV_VALUE_B" },
      ],
      cpu_weight: 57,
      disk_mb: 1024,
      memory_mb: 128,
      privileged: true,
      action: {
        run: {
          path: "/bin/sh",
          args: ["-c", "echo hi"],
          dir: "/tmp",
          env: [{ name: "A", value: "b c" }],
          resource_limits: { nofile: 1024 },
          user: "vcap",
          log_source: "APP",
        },
      },
      result_file: "/path/to/return",
      completion_callback_url: "http://optional/callback/url",
      log_guid: "some-log-guid",
      log_source: "some-log-source",
      annotation: "arbitrary metadata",
      security_group_rules: [{ protocol: "tcp", destination: "10.0.0.0/8", port_range: { start: 1, end: 1024 }, log: false }],
    };
    await expectCreated(request);
    const reply = await api.getTask(guid);
    const task = reply.json<Json>();
    for (const [key, value] of Object.entries(request)) {
      expect({ key, value: task[key] }).toEqual({ key, value });
      // Same key, same JSON spelling of the value, in the response text.
      expect(reply.text).toContain(`"${key}":${JSON.stringify(value)}`);
    }
    const added = ["state", "cell_id", "failed", "failure_reason", "result", "created_at"];
    expect(Object.keys(task).sort()).toEqual([...Object.keys(request), ...added].sort());
    expect(typeof task.created_at).toBe("number");
  });

  it("leaves env, annotation and security_group_rules out of the response when they were not given", async () => {
    const guid = uniqueGuid("omit");
    await expectCreated(validTask({}, guid));
    const task = await getJson(guid);
    expect(task).not.toHaveProperty("env");
    expect(task).not.toHaveProperty("annotation");
    expect(task).not.toHaveProperty("security_group_rules");
  });

  it("ignores unknown top-level keys, including 2015 names", async () => {
    const guid = uniqueGuid("unknown-keys");
    await expectCreated(
      validTask(
        { metrics_guid: "m", rootfs: "not-a-url", egress_rules: [{ protocol: "bogus" }], extra: { nested: [1, null] } },
        guid,
      ),
    );
    const task = await getJson(guid);
    for (const key of ["metrics_guid", "rootfs", "egress_rules", "extra"]) expect(task).not.toHaveProperty(key);
  });

  it.each([
    ["letters, digits, _ and -", () => `ABC_def-123-${uniqueGuid()}`],
    ["a single underscore", () => "_"],
    ["255 characters", () => uniqueGuid("long").padEnd(255, "x")],
  ])("accepts a task_guid of %s", async (_what, guid) => {
    const g = guid();
    await expectCreated(validTask({}, g));
    expect((await getJson(g)).task_guid).toBe(g);
  });

  it.each([
    ["absent", {}],
    ["docker:///org/image", { root_fs: "docker:///org/image" }],
    ["docker:///org/image#tag", { root_fs: "docker:///cloudfoundry/lucid64#v1.2" }],
    ["docker://host/org/image", { root_fs: "docker://registry.example.com/org/image" }],
    ["docker://host:port/org/image#tag", { root_fs: "docker://127.0.0.1:5000/org/image#latest" }],
    ["preloaded:<stack>", { root_fs: "preloaded:lucid64" }],
    ["preloaded:cflinuxfs2", { root_fs: "preloaded:cflinuxfs2" }],
  ])("accepts root_fs %s", async (_what, extra) => {
    await expectCreated(validTask(extra));
  });

  it.each([
    ["cpu_weight 0", { cpu_weight: 0 }],
    ["cpu_weight 1", { cpu_weight: 1 }],
    ["cpu_weight 100", { cpu_weight: 100 }],
    ["memory_mb and disk_mb 0", { memory_mb: 0, disk_mb: 0 }],
    ["an annotation of exactly 10240 bytes", { annotation: "a".repeat(10240) }],
    ["an annotation of 5120 two-byte characters", { annotation: "é".repeat(5120) }],
    ["an http callback", { completion_callback_url: "http://127.0.0.1:9/cb" }],
    ["an https callback with a query", { completion_callback_url: "https://example.com/cb?x=1" }],
    ["a run action without user", { action: { run: { path: "/bin/true" } } }],
  ])("accepts %s", async (_what, extra) => {
    await expectCreated(validTask(extra));
  });

  it.each([
    ["tcp with a CIDR and port_range 1-1024", { protocol: "tcp", destination: "1.2.3.4/16", port_range: { start: 1, end: 1024 } }],
    ["TCP in upper case, ports 1-65535", { protocol: "TCP", destination: "8.8.8.8", port_range: { start: 1, end: 65535 } }],
    ["udp to one port", { protocol: "udp", destination: "10.0.0.1", port_range: { start: 53, end: 53 } }],
    ["icmp with icmp_info", { protocol: "icmp", destination: "0.0.0.0/0", icmp_info: { type: 8, code: 0 } }],
    ["all", { protocol: "All", destination: "8.8.8.8/16" }],
  ])("accepts a security group rule: %s", async (_what, rule) => {
    const guid = uniqueGuid("rule");
    await expectCreated(validTask({ security_group_rules: [rule] }, guid));
    expect((await getJson(guid)).security_group_rules).toEqual([{ ...rule, log: false }]);
  });

  it("accepts every action type nested inside the others", async () => {
    const guid = uniqueGuid("nested");
    const action = {
      serial: {
        actions: [
          { download: { from: "http://127.0.0.1:9/app.tgz", to: "/app", cache_key: "app" } },
          { emit_progress: { action: run("/bin/a"), start_message: "starting", success_message: "ok", failure_message_prefix: "failed" } },
          { try: { action: { timeout: { action: run("/bin/b"), timeout: 1_000_000_000 } } } },
          { parallel: { actions: [run("/bin/c"), run("/bin/d")] } },
          { codependent: { actions: [run("/bin/e")] } },
          { upload: { from: "/app/out", to: "http://127.0.0.1:9/upload" } },
        ],
      },
    };
    await expectCreated(validTask({ action }, guid));
    const back = (await getJson(guid)).action as Json;
    expect(back).toMatchObject(action);
  });

  it("accepts actions nested 32 levels deep", async () => {
    let action: Json = run();
    for (let i = 1; i < 32; i++) action = { try: { action } };
    await expectCreated(validTask({ action }));
  });
});

describe("POST /v1/tasks: InvalidTask", () => {
  it("lists every missing required field for {}", async () => {
    await expectInvalidTask({}, F("task_guid", "domain", "stack", "action"));
  });

  it("lists every failed field in order, joined by ', '", async () => {
    await expectInvalidTask(
      {
        task_guid: "bad guid",
        domain: "",
        stack: "lucid64",
        root_fs: "nope",
        action: { run: {} },
        cpu_weight: 101,
        annotation: "a".repeat(10241),
        security_group_rules: [{ protocol: "tcp", destination: "1.2.3.4" }],
      },
      `${F("task_guid", "domain", "root_fs", "action", "path", "cpu_weight", "annotation", "security_group_rules")}, Missing required field: security_group_rules[0].ports or port_range`,
    );
  });

  it.each(["invalid/guid", "a b", "a.b", "", "ünïcode", "x".repeat(256)])("rejects task_guid %j", async (guid) => {
    await expectInvalidTask(validTask({}, guid), F("task_guid"));
  });

  it.each([
    ["a missing domain", { domain: undefined }, "domain"],
    ["an empty domain", { domain: "" }, "domain"],
    ["a missing stack", { stack: undefined }, "stack"],
    ["an empty stack", { stack: "" }, "stack"],
    ["cpu_weight 101", { cpu_weight: 101 }, "cpu_weight"],
    ["negative memory_mb", { memory_mb: -5 }, "memory_mb"],
    ["negative disk_mb", { disk_mb: -1 }, "disk_mb"],
    ["an annotation of 10241 bytes", { annotation: "a".repeat(10241) }, "annotation"],
    ["an annotation of 5121 two-byte characters", { annotation: "é".repeat(5121) }, "annotation"],
  ])("rejects %s", async (_what, extra, field) => {
    await expectInvalidTask(validTask(extra), F(field));
  });

  it.each([
    "invalid-absolute-url",
    ":invalid-url",
    "some:rootfs",
    "http://example.com/org/image",
    "docker://",
    "docker:///",
    "docker:///Org/Image",
    "docker:///org/image#",
    "docker://host:port/org/image",
    "preloaded:",
  ])("rejects root_fs %j", async (rootFs) => {
    await expectInvalidTask(validTask({ root_fs: rootFs }), F("root_fs"));
  });

  it.each(["ಠ_ಠ", "ftp://example.com/cb", "/relative/path", "http://", "127.0.0.1:8080/cb"])(
    "rejects completion_callback_url %j",
    async (url) => {
      await expectInvalidTask(validTask({ completion_callback_url: url }), F("completion_callback_url"));
    },
  );

  it.each([
    ["an unknown protocol", { protocol: "invalid", destination: "1.2.3.4" }],
    ["an empty protocol", { protocol: "", destination: "1.2.3.4", port_range: { start: 1, end: 2 } }],
    ["tcp without port_range", { protocol: "tcp", destination: "1.2.3.4" }],
    ["udp without port_range", { protocol: "udp", destination: "1.2.3.4" }],
    ["start > end", { protocol: "tcp", destination: "1.2.3.4", port_range: { start: 1024, end: 1 } }],
    ["start 0", { protocol: "tcp", destination: "1.2.3.4", port_range: { start: 0, end: 10 } }],
    ["end 65536", { protocol: "tcp", destination: "1.2.3.4", port_range: { start: 1, end: 65536 } }],
    ["destination 8.8", { protocol: "all", destination: "8.8" }],
    ["destination garbage/32", { protocol: "all", destination: "garbage/32" }],
    ["destination 1.2.3.4/33", { protocol: "all", destination: "1.2.3.4/33" }],
    ["destination 256.1.1.1", { protocol: "all", destination: "256.1.1.1" }],
    ["an empty destination", { protocol: "all", destination: "" }],
    ["an IPv6 destination", { protocol: "all", destination: "::1" }],
  ])("rejects a security group rule with %s", async (_what, rule) => {
    // Followed by the rule's own problems (test/network/rule-validation.test.ts).
    const err = expectError(await api.createTask(validTask({ security_group_rules: [rule] })), 400, "InvalidTask");
    expect(err.message.startsWith(`${F("security_group_rules")}, `)).toBe(true);
  });

  it("names security_group_rules once per invalid rule", async () => {
    const ok = { protocol: "all", destination: "1.2.3.4" };
    const bad = { protocol: "invalid", destination: "1.2.3.4" };
    await expectInvalidTask(
      validTask({ security_group_rules: [bad, ok, bad] }),
      F("security_group_rules", "security_group_rules[0].protocol", "security_group_rules", "security_group_rules[2].protocol"),
    );
  });

  it.each([
    ["a null action", { action: null }, ["action"]],
    ["no action", { action: undefined }, ["action"]],
    ["an empty action object", { action: {} }, ["action"]],
    ["an action of an unknown type", { action: { shell: { path: "/bin/sh" } } }, ["action"]],
    ["run without path", { action: { run: { user: "vcap" } } }, ["action", "path"]],
    ["run with an empty path", { action: { run: { path: "" } } }, ["action", "path"]],
    ["download without from", { action: { download: { to: "/app" } } }, ["action", "from"]],
    ["download without to", { action: { download: { from: "http://h/a.tgz" } } }, ["action", "to"]],
    ["upload without from", { action: { upload: { to: "http://h/up" } } }, ["action", "from"]],
    ["upload without to", { action: { upload: { from: "/out" } } }, ["action", "to"]],
    ["timeout without action", { action: { timeout: { timeout: 1000 } } }, ["action", "action"]],
    ["timeout 0", { action: { timeout: { action: run(), timeout: 0 } } }, ["action", "timeout"]],
    ["timeout missing", { action: { timeout: { action: run() } } }, ["action", "timeout"]],
    ["a negative timeout", { action: { timeout: { action: run(), timeout: -5 } } }, ["action", "timeout"]],
    [
      "timeout around an invalid upload",
      { action: { timeout: { action: { upload: { to: "http://h/up" } }, timeout: 1000 } } },
      ["action", "from"],
    ],
    ["try without action", { action: { try: {} } }, ["action", "action"]],
    ["emit_progress without action", { action: { emit_progress: { start_message: "hi" } } }, ["action", "action"]],
    ["parallel without actions", { action: { parallel: {} } }, ["action", "actions"]],
    ["serial with actions []", { action: { serial: { actions: [] } } }, ["action", "actions"]],
    ["codependent with actions []", { action: { codependent: { actions: [] } } }, ["action", "actions"]],
    ["serial with a null entry", { action: { serial: { actions: [null] } } }, ["action", "action at index 0"]],
    ["parallel with a null second entry", { action: { parallel: { actions: [run(), null] } } }, ["action", "action at index 1"]],
    ["codependent around an invalid upload", { action: { codependent: { actions: [{ upload: { to: "http://h/up" } }] } } }, ["action", "from"]],
  ])("rejects %s", async (_what, extra, fields) => {
    await expectInvalidTask(validTask(extra), F(...fields));
  });

  it("rejects actions nested deeper than 32 levels, however deep", async () => {
    let action: Json = run();
    for (let i = 1; i < 33; i++) action = { try: { action } };
    await expectInvalidTask(validTask({ action }), F("action"));
    // 20,000 levels in a half-megabyte body: rejected, not a stack overflow.
    const n = 20_000;
    const deep = '{"serial":{"actions":['.repeat(n) + JSON.stringify(run()) + "]}}".repeat(n);
    const body = `{"task_guid":"${uniqueGuid("deep")}","domain":"d","stack":"s","action":${deep}}`;
    await expectInvalidTask(body, F("action"));
  });

  it("validates before looking for a duplicate: an invalid request with a used guid is 400", async () => {
    const guid = uniqueGuid("dup-invalid");
    await expectCreated(validTask({}, guid));
    await expectInvalidTask(validTask({ domain: "" }, guid), F("domain"));
  });
});

describe("POST /v1/tasks: other errors", () => {
  it("answers 409 TaskGuidAlreadyExists for a second create of the same guid", async () => {
    const guid = uniqueGuid("dup");
    await expectCreated(validTask({}, guid));
    expectError(await api.createTask(validTask({ domain: "other" }, guid)), 409, "TaskGuidAlreadyExists", "task already exists");
    expect((await getJson(guid)).domain).toBe("test-domain");
  });

  it.each(["hello", "", "   ", "{", '{"task_guid":"x",}', "[]", "null", '"a string"', "42", "true"])(
    "answers 400 InvalidJSON to the body %j",
    async (body) => {
      await expectInvalidJson(body);
    },
  );

  it.each([
    ["task_guid", { task_guid: 123 }],
    ["domain", { domain: ["d"] }],
    ["stack", { stack: {} }],
    ["cpu_weight", { cpu_weight: -1 }],
    ["cpu_weight", { cpu_weight: 1.5 }],
    ["cpu_weight", { cpu_weight: "10" }],
    ["memory_mb", { memory_mb: "x" }],
    ["memory_mb", { memory_mb: 2 ** 31 }],
    ["disk_mb", { disk_mb: true }],
    ["privileged", { privileged: "yes" }],
    ["annotation", { annotation: 5 }],
    ["env", { env: "A=b" }],
    ["env[0].name", { env: [{ name: 1, value: "v" }] }],
    ["action", { action: "run" }],
    ["action.run", { action: { run: "/bin/true" } }],
    ["action.run.args", { action: { run: { path: "/x", args: "a b" } } }],
    ["action.run.args[1]", { action: { run: { path: "/x", args: ["a", 2] } } }],
    ["action.timeout.timeout", { action: { timeout: { action: run(), timeout: "soon" } } }],
    ["action.serial.actions[0]", { action: { serial: { actions: ["run"] } } }],
    ["security_group_rules", { security_group_rules: {} }],
    ["security_group_rules[0].port_range.start", { security_group_rules: [{ protocol: "tcp", destination: "1.2.3.4", port_range: { start: "1", end: 2 } }] }],
  ])("answers 400 InvalidJSON naming %s for a wrong JSON type", async (field, extra) => {
    await expectInvalidJson(JSON.stringify(validTask(extra)), field);
  });

  it("answers 400 InvalidJSON to an action with two type keys, naming where it is", async () => {
    await expectInvalidJson(
      JSON.stringify(validTask({ action: { serial: { actions: [{ run: { path: "/x" }, download: { from: "http://h/a", to: "/a" } }] } } })),
      "field 'action.serial.actions[0]' must have exactly one key naming its action type, got run, download",
    );
  });

  it("names every field of a wrong JSON type in one answer, not only the first", async () => {
    const body = validTask({
      domain: 7,
      cpu_weight: "high",
      env: [{ name: "A", value: 1 }, "B=2"],
      action: { serial: { actions: [{ run: { path: "/x", args: ["ok", 3] } }, { timeout: { action: { try: 5 }, timeout: "1m" } }] } },
    });
    const err = expectError(await api.createTask(JSON.stringify(body)), 400, "InvalidJSON");
    expect(err.message.split("; ")).toEqual([
      "field 'domain' must be a string, got the number 7",
      "field 'env[0].value' must be a string, got the number 1",
      "field 'env[1]' must be an object, got a string",
      "field 'cpu_weight' must be a non-negative integer, got a string",
      "field 'action.serial.actions[0].run.args[1]' must be a string, got the number 3",
      "field 'action.serial.actions[1].timeout.action.try' must be an object, got the number 5",
      "field 'action.serial.actions[1].timeout.timeout' must be an integer, got a string",
    ]);
  });

  it("keeps the answer short when a body holds thousands of wrong fields", async () => {
    const err = expectError(await api.createTask(JSON.stringify(validTask({ env: Array.from({ length: 5000 }, () => 1) }))), 400, "InvalidJSON");
    const parts = err.message.split("; ");
    expect(parts).toHaveLength(21);
    expect(parts[0]).toBe("field 'env[0]' must be an object, got the number 1");
    expect(parts[20]).toBe("and 4980 more");
  });

  it("answers 413 RequestTooLarge to a body over 1 MiB, and accepts one of exactly 1 MiB", async () => {
    const exact = (size: number, guid: string): string => {
      const head = JSON.stringify(validTask({ padding: "" }, guid));
      return head.replace('"padding":""', `"padding":"${"p".repeat(size - head.length)}"`);
    };
    const guid = uniqueGuid("big");
    const tooBig = exact(1024 * 1024 + 1, guid);
    expect(Buffer.byteLength(tooBig)).toBe(1024 * 1024 + 1);
    expectError(await api.createTask(tooBig), 413, "RequestTooLarge");
    expectError(await api.getTask(guid), 404, "TaskNotFound");

    const fits = exact(1024 * 1024, guid);
    expect(Buffer.byteLength(fits)).toBe(1024 * 1024);
    const reply = await api.createTask(fits);
    expect(reply.status).toBe(201);
  });

  it("answers 413 to a chunked body (no Content-Length) that grows past 1 MiB", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode("{"));
        sent += chunk.length;
        if (sent > 2 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${receptor.url}/v1/tasks`, { method: "POST", body, duplex: "half" } as RequestInit);
    const text = await res.text();
    statusesSeen.push(res.status);
    expect(res.status).toBe(413);
    expect(JSON.parse(text)).toMatchObject({ name: "RequestTooLarge" });
  });
});

describe("GET /v1/tasks/:task_guid", () => {
  it("answers 404 TaskNotFound with the 2015 message", async () => {
    expectError(
      await api.getTask("some-other-task-guid"),
      404,
      "TaskNotFound",
      "task with guid 'some-other-task-guid' not found",
    );
  });

  it.each(["a b", "a*b", "a>", "a.b", "x".repeat(300)])("answers 404 (not 500) for the impossible guid %j", async (guid) => {
    expectError(await api.getTask(guid), 404, "TaskNotFound", `task with guid '${guid}' not found`);
    expectError(await api.cancelTask(guid), 404, "TaskNotFound");
    expectError(await api.deleteTask(guid), 404, "TaskNotFound");
  });

  it("shows a completed task's outcome and clears its cell", async () => {
    const failed = uniqueGuid("failed");
    const succeeded = uniqueGuid("succeeded");
    await expectCreated(validTask({ result_file: "/tmp/result" }, failed));
    await expectCreated(validTask({ result_file: "/tmp/result" }, succeeded));
    await cell.finish(failed, "cell-read", { failed: true, failureReason: "Exited with status 1", result: "" });
    await cell.finish(succeeded, "cell-read", { failed: false, failureReason: "", result: "the result\n" });
    expect(await getJson(failed)).toMatchObject({
      state: "COMPLETED",
      failed: true,
      failure_reason: "Exited with status 1",
      result: "",
      cell_id: "",
    });
    expect(await getJson(succeeded)).toMatchObject({ state: "COMPLETED", failed: false, result: "the result\n", cell_id: "" });
  });

  it("shows the claiming cell while the task runs", async () => {
    const guid = uniqueGuid("running");
    await expectCreated(validTask({}, guid));
    await cell.run(guid, "cell-shown");
    expect(await getJson(guid)).toMatchObject({ state: "RUNNING", cell_id: "cell-shown" });
  });
});

describe("DELETE /v1/tasks/:task_guid", () => {
  const notDeletable = "This task has not been completed. Please retry when it is completed.";

  it("answers 409 TaskNotDeletable for a PENDING task, which stays", async () => {
    const guid = uniqueGuid("del-pending");
    await expectCreated(validTask({}, guid));
    expectError(await api.deleteTask(guid), 409, "TaskNotDeletable", notDeletable);
    expect((await getJson(guid)).state).toBe("PENDING");
  });

  it("answers 409 TaskNotDeletable for a RUNNING and a RESOLVING task", async () => {
    const running = uniqueGuid("del-running");
    const resolving = uniqueGuid("del-resolving");
    await expectCreated(validTask({}, running));
    await expectCreated(validTask({}, resolving));
    await cell.run(running, "cell-del");
    await cell.finish(resolving, "cell-del", { failed: false, failureReason: "", result: "" });
    await cell.store.apply(resolving, transitions.startResolving);
    expectError(await api.deleteTask(running), 409, "TaskNotDeletable", notDeletable);
    expectError(await api.deleteTask(resolving), 409, "TaskNotDeletable", notDeletable);
    expect((await getJson(running)).state).toBe("RUNNING");
    expect((await getJson(resolving)).state).toBe("RESOLVING");
  });

  it("answers 200 with an empty body for a COMPLETED task, which is then gone; a second DELETE is 404", async () => {
    const guid = uniqueGuid("del-completed");
    await expectCreated(validTask({}, guid));
    await cell.finish(guid, "cell-del", { failed: false, failureReason: "", result: "" });
    const reply = await api.deleteTask(guid);
    expect({ status: reply.status, text: reply.text }).toEqual({ status: 200, text: "" });
    expectError(await api.getTask(guid), 404, "TaskNotFound", `task with guid '${guid}' not found`);
    expectError(await api.deleteTask(guid), 404, "TaskNotFound", `task with guid '${guid}' not found`);
    const list = (await api.request("GET", "/v1/tasks")).json<Json[]>();
    expect(list.map((t) => t.task_guid)).not.toContain(guid);
  });

  it("answers 404 TaskNotFound for an unknown guid", async () => {
    const guid = uniqueGuid("del-unknown");
    expectError(await api.deleteTask(guid), 404, "TaskNotFound", `task with guid '${guid}' not found`);
  });
});

describe("POST /v1/tasks/:task_guid/cancel", () => {
  it("completes a PENDING task as failed with 'task was cancelled'", async () => {
    const guid = uniqueGuid("cancel-pending");
    await expectCreated(validTask({ result_file: "/tmp/r" }, guid));
    const reply = await api.cancelTask(guid);
    expect({ status: reply.status, text: reply.text }).toEqual({ status: 200, text: "" });
    expect(await getJson(guid)).toMatchObject({
      state: "COMPLETED",
      failed: true,
      failure_reason: "task was cancelled",
      result: "",
      cell_id: "",
    });
  });

  it("completes a RUNNING task and tells its cell to stop the container", async () => {
    const guid = uniqueGuid("cancel-running");
    const cellId = `cell-${uniqueGuid()}`;
    await expectCreated(validTask({}, guid));
    await cell.run(guid, cellId);
    const sub = cell.nc.subscribe(subjects.cellCancel(cellId), { max: 1 });
    await cell.nc.flush();
    expect((await api.cancelTask(guid)).status).toBe(200);
    for await (const m of sub) expect(m.string()).toBe(guid);
    expect(await getJson(guid)).toMatchObject({ state: "COMPLETED", failed: true, failure_reason: "task was cancelled", cell_id: "" });
  });

  it("answers 404 TaskNotFound for an unknown guid", async () => {
    const guid = uniqueGuid("cancel-unknown");
    expectError(await api.cancelTask(guid), 404, "TaskNotFound", `task with guid '${guid}' not found`);
  });

  it("answers 409 TaskNotCancelable for a COMPLETED or RESOLVING task, which keeps its outcome", async () => {
    const completed = uniqueGuid("cancel-completed");
    const resolving = uniqueGuid("cancel-resolving");
    await expectCreated(validTask({}, completed));
    await expectCreated(validTask({}, resolving));
    await cell.finish(completed, "cell-c", { failed: false, failureReason: "", result: "done" });
    await cell.finish(resolving, "cell-c", { failed: false, failureReason: "", result: "" });
    await cell.store.apply(resolving, transitions.startResolving);
    expectError(await api.cancelTask(completed), 409, "TaskNotCancelable");
    expectError(await api.cancelTask(resolving), 409, "TaskNotCancelable");
    expect(await getJson(completed)).toMatchObject({ state: "COMPLETED", failed: false, result: "done" });
    expect((await getJson(resolving)).state).toBe("RESOLVING");
  });

  it("still needs a DELETE after cancelling: DELETE then answers 200 and the task is gone", async () => {
    const guid = uniqueGuid("cancel-delete");
    await expectCreated(validTask({}, guid));
    expect((await api.cancelTask(guid)).status).toBe(200);
    expectError(await api.cancelTask(guid), 409, "TaskNotCancelable");
    expect((await api.deleteTask(guid)).status).toBe(200);
    expectError(await api.getTask(guid), 404, "TaskNotFound");
  });
});

describe("robustness", () => {
  it("answers JSON errors for unknown routes and methods", async () => {
    expectError(await api.request("GET", "/v1/nope"), 404, "InvalidRequest");
    const outside = expectError(await api.request("GET", "/nothing/here?x=1"), 404, "InvalidRequest");
    expect(outside.message).toBe("no route for GET /nothing/here");
    const reply = await api.request("PUT", "/v1/tasks");
    expectError(reply, 405, "InvalidRequest");
    expect(reply.headers.get("allow")).toBe("POST, GET, HEAD");
    expectError(await api.request("GET", "/v1/tasks/%E0%A4%A"), 400, "InvalidRequest");
  });

  it("answers HEAD like GET without a body, except on event streams", async () => {
    const guid = uniqueGuid("head");
    await expectCreated(validTask({}, guid));
    const get = await api.getTask(guid);
    const head = await api.request("HEAD", `/v1/tasks/${guid}`);
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
    expect(head.headers.get("content-type")).toBe("application/json");
    expect(head.headers.get("content-length")).toBe(String(Buffer.byteLength(get.text)));
    expect((await api.request("HEAD", "/v1/tasks/no-such-task")).status).toBe(404);
    const events = await api.request("HEAD", "/v1/events");
    expect(events.status).toBe(405);
    expect(events.headers.get("allow")).toBe("GET");
  });

  it("keeps serving after a burst of bad input", async () => {
    const bad = [
      "\u0000\u0001\u0002",
      "{".repeat(100_000),
      "[".repeat(500_000) + "]".repeat(500_000),
      '{"task_guid":',
      JSON.stringify(validTask({ action: { run: { path: "/x" }, try: { action: null } } })),
      JSON.stringify(validTask({ env: [null, { name: "a" }] })),
      JSON.stringify(validTask({ security_group_rules: [null] })),
      JSON.stringify(validTask({ memory_mb: 1e300 })),
      JSON.stringify(validTask({ action: { timeout: { action: run(), timeout: 1e30 } } })),
    ];
    const replies = await Promise.all(bad.map((body) => api.createTask(body)));
    for (const reply of replies) {
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expect(reply.json<ErrorBody>().name).toMatch(/^Invalid(JSON|Task)$/);
    }
    const guid = uniqueGuid("after-bad");
    await expectCreated(validTask({}, guid));
    expect((await getJson(guid)).state).toBe("PENDING");
  });

  it("never answered 500 to anything in this file", () => {
    expect(statusesSeen.length).toBeGreaterThan(100);
    expect(statusesSeen.filter((s) => s >= 500)).toEqual([]);
  });
});
