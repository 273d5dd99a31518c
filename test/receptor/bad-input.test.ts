import http2 from "node:http2";
import net from "node:net";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetTaskRequestSchema } from "../../src/gen/diego/v1/service_pb.js";
import { TaskCreateRequestSchema } from "../../src/gen/diego/v1/task_pb.js";
import { TaskCreateRequest } from "../../src/gen/grpc-js/diego/v1/task.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createGrpcApi, grpcError, type GrpcApi } from "./grpc-client.js";
import { createRestClient, uniqueGuid, type RestClient } from "./rest-client.js";

// Inputs that got a 5xx, a reset or no answer at all: each now gets a 4xx naming what is wrong,
// and the receptor serves the next request as before.

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let api: RestClient;
let grpcApi: GrpcApi;
const logLines: Array<{ level: number; msg: string }> = [];

beforeAll(async () => {
  nats = await startNats();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  receptor = await startTestReceptor(nats.url, { logger: pino({ level: "debug" }, sink) });
  api = createRestClient(receptor.url);
  grpcApi = createGrpcApi(receptor.address);
});
afterAll(async () => {
  grpcApi?.close();
  await receptor?.stop();
  await nats?.dispose();
});

const task = (extra: Record<string, unknown> = {}, guid = uniqueGuid("bad")) => ({
  task_guid: guid,
  domain: "bad-input",
  stack: "lucid64",
  action: { run: { path: "/bin/true" } },
  ...extra,
});

/** The receptor still serves: a task is created and read back. */
async function expectHealthy(): Promise<void> {
  const guid = uniqueGuid("healthy");
  expect((await api.createTask(task({}, guid))).status).toBe(201);
  expect((await api.getTask(guid)).status).toBe(200);
}

/** Sends raw bytes on a new HTTP/1.1 connection and returns everything until the server closes it. */
function rawHttp(text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(receptor.port, "127.0.0.1", () => s.write(text));
    let out = "";
    s.on("data", (c: Buffer) => (out += c.toString("latin1")));
    s.on("close", () => resolve(out));
    s.on("error", reject);
  });
}

const grpcFrame = (message: Uint8Array): Buffer => {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
};

interface H2Reply {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request over a fresh HTTP/2 connection. */
function h2Request(headers: http2.OutgoingHttpHeaders, body: Buffer | string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(receptor.url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ...headers });
    let replyHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => (replyHeaders = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      session.close();
      resolve({ headers: replyHeaders, trailers, body: Buffer.concat(chunks) });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const grpcStatus = (r: H2Reply): string | undefined => (r.trailers["grpc-status"] ?? r.headers["grpc-status"]) as string | undefined;

describe("numbers out of range", () => {
  it("answers 400 InvalidJSON naming a timeout above int64 (it wrapped negative)", async () => {
    for (const timeout of ["9999999999999999999", 1e20, "-9223372036854775809"]) {
      const guid = uniqueGuid("timeout");
      const reply = await api.createTask(task({ action: { timeout: { action: { run: { path: "/bin/true" } }, timeout } } }, guid));
      expect(reply.status).toBe(400);
      expect(reply.json()).toMatchObject({ name: "InvalidJSON" });
      expect(reply.json<{ message: string }>().message).toMatch(/field 'action\.timeout\.timeout' is out of range: must be an integer from -9223372036854775808 to 9223372036854775807/);
      expect((await api.getTask(guid)).status).toBe(404);
    }
    // The largest int64 is a valid duration.
    expect((await api.createTask(task({ action: { timeout: { action: { run: { path: "/bin/true" } }, timeout: "9223372036854775807" } } }))).status).toBe(201);
    await expectHealthy();
  });

  it("answers 400 naming every numeric field out of its range", async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ memory_mb: 2 ** 31 }, "InvalidJSON", "memory_mb"],
      [{ disk_mb: -(2 ** 31) - 1 }, "InvalidJSON", "disk_mb"],
      [{ cpu_weight: 2 ** 32 }, "InvalidJSON", "cpu_weight"],
      [{ cpu_weight: 101 }, "InvalidTask", "cpu_weight"],
      [{ memory_mb: -1 }, "InvalidTask", "memory_mb"],
      [{ action: { run: { path: "/bin/true", resource_limits: { nofile: 2 ** 53 } } } }, "InvalidJSON", "nofile"],
      [{ action: { run: { path: "/bin/true", resource_limits: { nofile: 1024 * 1024 + 1 } } } }, "InvalidTask", "nofile"],
      [{ action: { timeout: { action: { run: { path: "/bin/true" } }, timeout: 0 } } }, "InvalidTask", "timeout"],
      [{ security_group_rules: [{ protocol: "tcp", destination: "10.0.0.1", port_range: { start: 1, end: 2 ** 32 } }] }, "InvalidJSON", "port_range.end"],
    ];
    for (const [extra, name, field] of cases) {
      const reply = await api.createTask(task(extra));
      expect({ extra, status: reply.status, name: reply.json<{ name: string }>().name }).toEqual({ extra, status: 400, name });
      expect(reply.json<{ message: string }>().message).toContain(field);
    }
  });

  it("gRPC: INVALID_ARGUMENT for a nofile no process can have", async () => {
    const err = await grpcError(
      grpcApi.createTask(
        TaskCreateRequest.fromPartial({
          taskGuid: uniqueGuid("nofile"),
          domain: "bad-input",
          stack: "lucid64",
          action: { run: { path: "/bin/true", resourceLimits: { nofile: 2 ** 40 } } },
        }),
      ),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("Invalid field: nofile");
  });
});

describe("records that would not fit NATS's max_payload", () => {
  it("answers 413 naming the limit to a valid body whose record is too large, and stores nothing", async () => {
    // 1,040,000 bytes of env: under the 1 MiB body limit, too close to NATS's 1 MiB once stored.
    const guid = uniqueGuid("near-limit");
    const body = task({ env: [{ name: "BIG", value: "x".repeat(1_040_000) }] }, guid);
    const reply = await api.createTask(body);
    expect(reply.status).toBe(413);
    expect(reply.json()).toMatchObject({ name: "RequestTooLarge" });
    expect(reply.json<{ message: string }>().message).toMatch(/over the \d+-byte limit \(the NATS server's max_payload of 1048576 bytes/);
    expect((await api.getTask(guid)).status).toBe(404);
    await expectHealthy();
  });

  it("answers 413 to invalid UTF-8 that grows threefold when stored", async () => {
    const guid = uniqueGuid("invalid-utf8");
    const head = Buffer.from(JSON.stringify(task({ annotation: "" , env: [{ name: "A", value: "@@" }] }, guid)));
    const at = head.indexOf("@@");
    // 400 KB of 0xff: each becomes U+FFFD, three bytes, in the stored record.
    const body = Buffer.concat([head.subarray(0, at), Buffer.alloc(400_000, 0xff), head.subarray(at + 2)]);
    const res = await fetch(`${receptor.url}/v1/tasks`, { method: "POST", body: new Uint8Array(body), headers: { "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { name: string }).name).toBe("RequestTooLarge");
    expect((await api.getTask(guid)).status).toBe(404);
  });

  it("accepts the largest record that fits, and it can still be cancelled and deleted", async () => {
    const guid = uniqueGuid("fits");
    // Well under the limit, about 1,000,000 - 40 KiB.
    const reply = await api.createTask(task({ env: [{ name: "BIG", value: "x".repeat(990_000) }] }, guid));
    expect(reply.status).toBe(201);
    expect((await api.cancelTask(guid)).status).toBe(200);
    const got = (await api.getTask(guid)).json<{ state: string; failure_reason: string }>();
    expect(got).toMatchObject({ state: "COMPLETED", failure_reason: "task was cancelled" });
    expect((await api.deleteTask(guid)).status).toBe(200);
  });

  it("gRPC: RESOURCE_EXHAUSTED for the same record", async () => {
    const err = await grpcError(
      grpcApi.createTask(
        TaskCreateRequest.fromPartial({
          taskGuid: uniqueGuid("grpc-big"),
          domain: "bad-input",
          stack: "lucid64",
          env: [{ name: "BIG", value: "x".repeat(1_040_000) }],
          action: { run: { path: "/bin/true" } },
        }),
      ),
    );
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/^RequestTooLarge: .*max_payload/);
  });
});

describe("malformed requests", () => {
  it("answers 400 to an invalid absolute URL in the request line", async () => {
    const reply = await rawHttp("GET http://[::1 HTTP/1.1\r\nHost: receptor\r\nConnection: close\r\n\r\n");
    expect(reply.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    expect(reply).toContain('"name":"InvalidRequest"');
    await expectHealthy();
  });

  it("answers 405 to a CONNECT request", async () => {
    const reply = await rawHttp("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    expect(reply.split("\r\n")[0]).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(reply).toContain('"name":"InvalidRequest"');
    await expectHealthy();
  });

  it("Connect binary and gRPC-Web with a bad body: 400 invalid_argument, not 500", async () => {
    const res = await fetch(`${receptor.url}/diego.v1.TaskService/GetTask`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: Buffer.from([0x0a, 0x10, 0x61]),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_argument" });
    // gRPC-Web, the same bytes in its envelope.
    const web = await fetch(`${receptor.url}/diego.v1.TaskService/GetTask`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto" },
      body: new Uint8Array(grpcFrame(Buffer.from([0x0a, 0x10, 0x61]))),
    });
    expect(web.status).toBe(200);
    expect(web.headers.get("grpc-status")).toBe(String(grpc.status.INVALID_ARGUMENT));
    await expectHealthy();
  });

  it("a garbage WatchTasks request: invalid_argument over Connect and gRPC, like the unary methods", async () => {
    const connect = await fetch(`${receptor.url}/diego.v1.TaskService/WatchTasks`, {
      method: "POST",
      headers: { "content-type": "application/connect+json" },
      body: new Uint8Array(Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from("{{{{{")])),
    });
    const text = Buffer.from(await connect.arrayBuffer()).toString("latin1");
    expect(text).toContain('"code":"invalid_argument"');
    const connectProto = await fetch(`${receptor.url}/diego.v1.TaskService/WatchTasks`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto" },
      body: new Uint8Array(grpcFrame(Buffer.from([0x0a, 0x50, 0x61]))),
    });
    expect(Buffer.from(await connectProto.arrayBuffer()).toString("latin1")).toContain('"code":"invalid_argument"');
    const web = await fetch(`${receptor.url}/diego.v1.TaskService/WatchTasks`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto" },
      body: new Uint8Array(grpcFrame(Buffer.from([0x0a, 0x50, 0x61]))),
    });
    const webBody = Buffer.from(await web.arrayBuffer()).toString("latin1");
    expect(web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(webBody)?.[1]).toBe(String(grpc.status.INVALID_ARGUMENT));

    const viaGrpc = await h2Request(
      { ":path": "/diego.v1.TaskService/WatchTasks", "content-type": "application/grpc", te: "trailers" },
      grpcFrame(Buffer.from([0x0a, 0x50, 0x61])),
    );
    expect(grpcStatus(viaGrpc)).toBe(String(grpc.status.INVALID_ARGUMENT));
    const unary = await h2Request(
      { ":path": "/diego.v1.TaskService/GetTask", "content-type": "application/grpc", te: "trailers" },
      grpcFrame(Buffer.from([0x0a, 0x50, 0x61])),
    );
    expect(grpcStatus(unary)).toBe(String(grpc.status.INVALID_ARGUMENT));
    // Compressed, so through Connect's handler rather than the fast path.
    const compressed = gzipSync(Buffer.from([0x0a, 0x50, 0x61]));
    const frame = grpcFrame(compressed);
    frame[0] = 1;
    const gzipped = await h2Request(
      { ":path": "/diego.v1.TaskService/GetTask", "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" },
      frame,
    );
    expect(grpcStatus(gzipped)).toBe(String(grpc.status.INVALID_ARGUMENT));
    await expectHealthy();
  });

  it("gRPC Get/Cancel/Delete of a 100,000-character guid: NOT_FOUND quoting 300 characters, not a stream reset", async () => {
    const guid = "g".repeat(100_000);
    for (const call of [() => grpcApi.getTask(guid), () => grpcApi.cancelTask(guid), () => grpcApi.deleteTask(guid)]) {
      const err = await grpcError(call());
      expect(err.code).toBe(grpc.status.NOT_FOUND);
      expect(err.details).toBe(`TaskNotFound: task with guid '${"g".repeat(300)}…' not found`);
    }
    // REST: such a URL is over Node's header limit (431); one of 5,000 characters gets a short 404.
    expect((await api.getTask(guid)).status).toBe(431);
    const rest = await api.getTask("g".repeat(5_000));
    expect(rest.status).toBe(404);
    expect(rest.text.length).toBeLessThan(400);
    await expectHealthy();
  });
});

describe("deadlines", () => {
  const createOverGrpc = (guid: string, grpcTimeout: string) =>
    h2Request(
      { ":path": "/diego.v1.TaskService/CreateTask", "content-type": "application/grpc", te: "trailers", "grpc-timeout": grpcTimeout },
      grpcFrame(toBinary(TaskCreateRequestSchema, create(TaskCreateRequestSchema, { taskGuid: guid, domain: "bad-input", stack: "lucid64", action: { action: { case: "run", value: { path: "/bin/true" } } } }))),
    );

  it("gRPC: a CreateTask whose grpc-timeout passed on arrival is DEADLINE_EXCEEDED and creates nothing", async () => {
    const guid = uniqueGuid("expired");
    expect(grpcStatus(await createOverGrpc(guid, "1n"))).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    expect((await api.getTask(guid)).status).toBe(404);
    // A deadline that leaves time is honoured by doing the work.
    const ok = uniqueGuid("in-time");
    expect(grpcStatus(await createOverGrpc(ok, "10S"))).toBe("0");
    expect((await api.getTask(ok)).status).toBe(200);
    // A grpc-timeout that is not one: INVALID_ARGUMENT.
    expect(grpcStatus(await createOverGrpc(uniqueGuid("bad-timeout"), "soon"))).toBe(String(grpc.status.INVALID_ARGUMENT));
  });

  it("gRPC-Web and Connect: an expired deadline creates nothing either", async () => {
    const guid = uniqueGuid("expired-web");
    const message = toBinary(TaskCreateRequestSchema, create(TaskCreateRequestSchema, { taskGuid: guid, domain: "bad-input", stack: "lucid64", action: { action: { case: "run", value: { path: "/bin/true" } } } }));
    const web = await fetch(`${receptor.url}/diego.v1.TaskService/CreateTask`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "grpc-timeout": "1n" },
      body: new Uint8Array(grpcFrame(message)),
    });
    const webStatus = web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(Buffer.from(await web.arrayBuffer()).toString("latin1"))?.[1];
    expect(webStatus).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    const connect = await fetch(`${receptor.url}/diego.v1.TaskService/CreateTask`, {
      method: "POST",
      headers: { "content-type": "application/proto", "connect-timeout-ms": "0" },
      body: message,
    });
    expect(await connect.json()).toMatchObject({ code: "deadline_exceeded" });
    const connectJson = await fetch(`${receptor.url}/diego.v1.TaskService/CreateTask`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "0" },
      body: JSON.stringify({ taskGuid: guid, domain: "bad-input", stack: "lucid64", action: { run: { path: "/bin/true" } } }),
    });
    expect(await connectJson.json()).toMatchObject({ code: "deadline_exceeded" });
    expect((await api.getTask(guid)).status).toBe(404);
  });
});

describe("oversize bodies", () => {
  it("REST and Connect both answer 413 and say the body is too large", async () => {
    const big = JSON.stringify({ taskGuid: "x".repeat(1024 * 1024 + 10) });
    const rest = await api.createTask(big);
    expect(rest.status).toBe(413);
    expect(rest.json<{ message: string }>().message).toMatch(/too large/);
    const connect = await fetch(`${receptor.url}/diego.v1.TaskService/GetTask`, { method: "POST", headers: { "content-type": "application/json" }, body: big });
    expect(connect.status).toBe(413);
    const err = (await connect.json()) as { code: string; message: string };
    expect(err.code).toBe("resource_exhausted");
    expect(err.message).toMatch(/too large/);
    // Without Content-Length (chunked), Connect's own limit answers: 413 too, not 429.
    const chunked = await fetch(`${receptor.url}/diego.v1.TaskService/GetTask`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { code: string }).code).toBe("resource_exhausted");
    // And the binary fast path (Connect proto, gRPC-Web) says the same.
    const proto = await fetch(`${receptor.url}/diego.v1.TaskService/GetTask`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array(1024 * 1024 + 1),
    });
    expect(proto.status).toBe(413);
    expect(((await proto.json()) as { message: string }).message).toMatch(/^RequestTooLarge: request body is too large/);
    await expectHealthy();
  });
});

describe("client aborts", () => {
  it("are logged at debug level, not as errors", async () => {
    const before = logLines.length;
    // REST: a body promised and never sent.
    const s = net.connect(receptor.port, "127.0.0.1");
    await new Promise<void>((r) => s.once("connect", () => r()));
    // Its "100 Continue" says the receptor has the request.
    const continued = new Promise((r) => s.once("data", r));
    s.write("POST /v1/tasks HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    await continued;
    s.write('{"task_guid":');
    // gRPC: a stream reset half way through its message.
    const session = http2.connect(receptor.url);
    const req = session.request({ ":method": "POST", ":path": "/diego.v1.TaskService/GetTask", "content-type": "application/grpc", te: "trailers" });
    req.write(grpcFrame(toBinary(GetTaskRequestSchema, create(GetTaskRequestSchema, { taskGuid: "x".repeat(50) }))).subarray(0, 20));
    // The PING is answered after the frames before it were taken in.
    await new Promise((r) => session.ping(() => r(undefined)));
    s.destroy();
    req.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => logLines.slice(before).filter((l) => /went before/.test(l.msg)).length >= 2, () => JSON.stringify(logLines.slice(before)));
    session.close();
    const lines = logLines.slice(before);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => /went before/.test(l.msg)).every((l) => l.level === 20)).toBe(true);
    await expectHealthy();
  });
});

describe("task env in logs", () => {
  it("never appears in a log line, whatever becomes of the request (debug level)", async () => {
    const secret = `SECRET-${uniqueGuid("env")}`;
    const env = [{ name: "PASSWORD", value: secret }];
    const before = logLines.length;
    const guid = uniqueGuid("env-ok");
    expect((await api.createTask(task({ env }, guid))).status).toBe(201);
    expect((await api.getTask(guid)).text).toContain(secret); // the API does show it: see docs/security.md
    expect((await api.createTask(task({ env, cpu_weight: 1000 }))).status).toBe(400);
    expect((await api.createTask(task({ env, domain: 5 }))).status).toBe(400);
    expect((await api.createTask(task({ env: [...env, { name: "BIG", value: "x".repeat(1_040_000) }] }))).status).toBe(413);
    expect((await grpcError(grpcApi.createTask(TaskCreateRequest.fromPartial({ taskGuid: guid, domain: "d", stack: "s", env, action: { run: { path: "/x" } } })))).code).toBe(
      grpc.status.ALREADY_EXISTS,
    );
    // A body cut short, with the secret in the part that came: logged (debug), but not its body.
    const s = net.connect(receptor.port, "127.0.0.1");
    const continued = new Promise((r) => s.once("data", r));
    s.write("POST /v1/tasks HTTP/1.1\r\nHost: r\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
    await continued;
    s.write(JSON.stringify(task({ env })).slice(0, -1));
    s.destroy();
    await waitFor(() => logLines.length > before, () => "no log line");
    await expectHealthy();
    expect(JSON.stringify(logLines.slice(before))).not.toContain(secret);
  });
});

async function waitFor(cond: () => boolean, describe: () => string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met: ${describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
