import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizationInterceptor, basic, bearer } from "../../src/api/client-auth.js";
import { TaskService } from "../../src/gen/diego/v1/service_pb.js";
import { TaskCreateRequest } from "../../src/gen/grpc-js/diego/v1/task.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { spawnDiego, startTestReceptor } from "../fixtures/receptor.js";
import { createGrpcApi, grpcError } from "./grpc-client.js";
import { createRestClient, uniqueGuid } from "./rest-client.js";

// API authentication (Basic and bearer tokens) on all four protocols, the token file re-read on
// SIGHUP, CORS, and the warning for an open API on a non-loopback address.

const USER = "diego-user";
const PASSWORD = "s3cret:with:colons";
const TOKENS = ["token-one", "token-two"];

let nats: TestNats;
let dir: string;
let tokenFile: string;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;

beforeAll(async () => {
  nats = await startNats();
  dir = await mkdtemp(path.join(os.tmpdir(), "diego-auth-"));
  tokenFile = path.join(dir, "tokens");
  await writeFile(tokenFile, `# API tokens\n${TOKENS.join("\n")}\n\n`, { mode: 0o600 });
  receptor = await startTestReceptor(nats.url, { auth: { user: USER, password: PASSWORD, tokenFile } });
});
afterAll(async () => {
  await receptor?.stop();
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const task = (guid = uniqueGuid("auth")) => ({
  task_guid: guid,
  domain: "auth-domain",
  stack: "lucid64",
  action: { run: { path: "/bin/true" } },
});

const CREDENTIALS = {
  missing: undefined,
  "a wrong token": bearer("token-three"),
  "a token prefix": bearer("token-on"),
  "a wrong password": basic(USER, "guess"),
  "a wrong user": basic("someone", PASSWORD),
  "an unknown scheme": `Digest ${TOKENS[0]}`,
} as const;

describe("REST", () => {
  for (const [what, authorization] of Object.entries(CREDENTIALS)) {
    it(`answers 401 Unauthorized with ${what} credentials`, async () => {
      const api = createRestClient(receptor.url, { headers: authorization ? { authorization } : {} });
      const guid = uniqueGuid("rest-denied");
      const created = await api.createTask(task(guid));
      expect(created.status).toBe(401);
      expect(created.json()).toMatchObject({ name: "Unauthorized" });
      expect(created.headers.get("www-authenticate")).toMatch(/^Basic realm="diego".*Bearer realm="diego"/);
      expect((await api.request("GET", "/v1/tasks")).status).toBe(401);
      // Nothing was created: a right caller finds no such task.
      const admin = createRestClient(receptor.url, { headers: { authorization: bearer(TOKENS[0]!) } });
      expect((await admin.getTask(guid)).status).toBe(404);
    });
  }

  it("lets in every token of the file and the Basic credentials", async () => {
    for (const authorization of [bearer(TOKENS[0]!), bearer(TOKENS[1]!), basic(USER, PASSWORD)]) {
      const api = createRestClient(receptor.url, { headers: { authorization } });
      const guid = uniqueGuid("rest-ok");
      expect((await api.createTask(task(guid))).status).toBe(201);
      expect((await api.getTask(guid)).json()).toMatchObject({ task_guid: guid });
    }
  });

  it("leaves the health and metrics paths open (never 401)", async () => {
    const api = createRestClient(receptor.url);
    for (const p of ["/healthz", "/readyz", "/metrics"]) expect((await api.request("GET", p)).status).toBe(200);
  });
});

describe("Connect and gRPC-Web (connect-node clients)", () => {
  const withAuthorization =
    (value: string): Interceptor =>
    (next) =>
    async (req) => {
      req.header.set("authorization", value);
      return next(req);
    };
  const transports = {
    "Connect JSON": (interceptors: Interceptor[]) =>
      createConnectTransport({ baseUrl: receptor.url, httpVersion: "1.1", useBinaryFormat: false, interceptors }),
    "Connect binary over HTTP/2": (interceptors: Interceptor[]) =>
      createConnectTransport({ baseUrl: receptor.url, httpVersion: "2", useBinaryFormat: true, interceptors }),
    "gRPC-Web": (interceptors: Interceptor[]) => createGrpcWebTransport({ baseUrl: receptor.url, httpVersion: "1.1", interceptors }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    it(`${name}: UNAUTHENTICATED without or with wrong credentials, served with right ones`, async () => {
      for (const authorization of [undefined, bearer("nope"), basic(USER, "nope")]) {
        const client = createClient(TaskService, transport(authorization ? [withAuthorization(authorization)] : []));
        const err = await client.getTask({ taskGuid: "anything" }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect(err?.code).toBe(Code.Unauthenticated);
        expect(err?.rawMessage).toMatch(/^Unauthorized: /);
        // A stream is refused the same way.
        const stream = client.watchTasks({ domain: "auth-domain" });
        const streamErr = await stream[Symbol.asyncIterator]()
          .next()
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        expect(streamErr?.code).toBe(Code.Unauthenticated);
      }
      const client = createClient(TaskService, transport([withAuthorization(bearer(TOKENS[1]!))]));
      const guid = uniqueGuid("connect-ok");
      await client.createTask({ taskGuid: guid, domain: "auth-domain", stack: "lucid64", action: { action: { case: "run", value: { path: "/bin/true" } } } });
      expect((await client.getTask({ taskGuid: guid })).taskGuid).toBe(guid);
    });
  }
});

describe("gRPC (@grpc/grpc-js)", () => {
  const createReq = (guid: string) =>
    TaskCreateRequest.fromPartial({ taskGuid: guid, domain: "auth-domain", stack: "lucid64", action: { run: { path: "/bin/true" } } });

  it("UNAUTHENTICATED without or with wrong credentials, on the unary fast path and on streams", async () => {
    for (const authorization of [undefined, bearer("nope"), basic("x", "y")]) {
      const api = createGrpcApi(receptor.address, authorization ? { interceptors: [authorizationInterceptor(authorization)] } : {});
      try {
        const guid = uniqueGuid("grpc-denied");
        const err = await grpcError(api.createTask(createReq(guid)));
        expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(err.details).toMatch(/^Unauthorized: /);
        expect((await grpcError(api.listCells())).code).toBe(grpc.status.UNAUTHENTICATED);
        const streamErr = await new Promise<grpc.ServiceError>((resolve) => api.watchTasks("auth-domain").once("error", resolve));
        expect(streamErr.code).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        api.close();
      }
    }
  });

  it("serves a client with a token or Basic credentials in its metadata", async () => {
    for (const authorization of [bearer(TOKENS[0]!), basic(USER, PASSWORD)]) {
      const api = createGrpcApi(receptor.address, { interceptors: [authorizationInterceptor(authorization)] });
      try {
        const guid = uniqueGuid("grpc-ok");
        await api.createTask(createReq(guid));
        expect((await api.getTask(guid)).taskGuid).toBe(guid);
      } finally {
        api.close();
      }
    }
  });
});

describe("token file re-read on SIGHUP", () => {
  it("a real receptor process takes a new token and drops a removed one on SIGHUP", async () => {
    const file = path.join(dir, "hup-tokens");
    await writeFile(file, "first-token\n", { mode: 0o600 });
    const proc = await spawnDiego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0", "--auth-token-file", file], {
      DIEGO_LOG_LEVEL: "info",
      DIEGO_LOG_FORMAT: "json",
    });
    try {
      const url = `http://${/ready on (\S+)/.exec(proc.readyLine)![1]}`;
      const status = async (token: string): Promise<number> =>
        (await createRestClient(url, { headers: { authorization: bearer(token) } }).request("GET", "/v1/tasks")).status;
      expect(await status("first-token")).toBe(200);
      expect(await status("second-token")).toBe(401);

      await writeFile(file, "second-token\n");
      const reloaded = waitForStderr(proc, /auth tokens reloaded/);
      proc.child.kill("SIGHUP");
      await reloaded;
      expect(await status("second-token")).toBe(200);
      expect(await status("first-token")).toBe(401);

      // A file that cannot be read keeps the tokens in force (and the process alive).
      await rm(file);
      const failed = waitForStderr(proc, /auth tokens not reloaded/);
      proc.child.kill("SIGHUP");
      await failed;
      expect(await status("second-token")).toBe(200);
    } finally {
      await proc.kill("SIGTERM");
    }
  });

  it("refuses to start on a token file with no token", async () => {
    const file = path.join(dir, "empty-tokens");
    await writeFile(file, "# nothing yet\n");
    await expect(spawnDiego(["receptor", "--nats", nats.url, "--listen", "127.0.0.1:0", "--auth-token-file", file])).rejects.toThrow(
      /holds no token/,
    );
  });
});

function waitForStderr(proc: Awaited<ReturnType<typeof spawnDiego>>, pattern: RegExp): Promise<void> {
  const seen = proc.stderr().length;
  return new Promise((resolve) => {
    const check = (): void => {
      if (!pattern.test(proc.stderr().slice(seen))) return;
      proc.child.stderr!.off("data", check);
      resolve();
    };
    proc.child.stderr!.on("data", check);
  });
}

describe("CORS", () => {
  const preflight = (url: string, origin: string) =>
    fetch(`${url}/v1/tasks`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });

  it("is off by default: no CORS headers, no preflight answer", async () => {
    const r = await startTestReceptor(nats.url);
    try {
      const res = await preflight(r.url, "https://app.example");
      expect(res.status).toBe(405);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      const get = await fetch(`${r.url}/v1/tasks`, { headers: { origin: "https://app.example" } });
      expect(get.status).toBe(200);
      expect(get.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await r.stop();
    }
  });

  it("answers preflights and calls from the listed origins only, before authentication", async () => {
    const r = await startTestReceptor(nats.url, { corsOrigins: ["https://app.example"], auth: { tokenFile } });
    try {
      const ok = await preflight(r.url, "https://app.example");
      expect(ok.status).toBe(204);
      expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(ok.headers.get("access-control-allow-headers")).toContain("authorization");
      expect(ok.headers.get("access-control-allow-methods")).toContain("POST");
      const denied = await preflight(r.url, "https://evil.example");
      expect(denied.status).toBe(403);
      expect(denied.headers.get("access-control-allow-origin")).toBeNull();

      const call = await fetch(`${r.url}/v1/tasks`, { headers: { origin: "https://app.example", authorization: bearer(TOKENS[0]!) } });
      expect(call.status).toBe(200);
      expect(call.headers.get("access-control-allow-origin")).toBe("https://app.example");
      // A 401 carries the CORS headers too, so a browser script can read why.
      const unauthorized = await fetch(`${r.url}/v1/tasks`, { headers: { origin: "https://app.example" } });
      expect(unauthorized.status).toBe(401);
      expect(unauthorized.headers.get("access-control-allow-origin")).toBe("https://app.example");
      // gRPC-Web and Connect: the status headers are exposed to scripts.
      const connect = await fetch(`${r.url}/diego.v1.TaskService/ListTasks`, {
        method: "POST",
        headers: { origin: "https://app.example", "content-type": "application/json", authorization: bearer(TOKENS[0]!) },
        body: "{}",
      });
      expect(connect.status).toBe(200);
      expect(connect.headers.get("access-control-expose-headers")).toContain("grpc-status");
    } finally {
      await r.stop();
    }
  });

  it("with * answers any origin", async () => {
    const r = await startTestReceptor(nats.url, { corsOrigins: ["*"] });
    try {
      const res = await preflight(r.url, "https://anything.example");
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
    } finally {
      await r.stop();
    }
  });
});

describe("start-up warning", () => {
  const startLogged = async (opts: Parameters<typeof startTestReceptor>[1]) => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const r = await startTestReceptor(nats.url, { logger: pino({ level: "warn" }, sink), ...opts });
    await r.stop();
    return lines.join("");
  };

  it("warns when the API listens beyond loopback without authentication, not otherwise", async () => {
    expect(await startLogged({ host: "0.0.0.0" })).toMatch(/non-loopback address without authentication/);
    expect(await startLogged({ host: "0.0.0.0", auth: { tokenFile } })).not.toMatch(/without authentication/);
    expect(await startLogged({ host: "127.0.0.1" })).not.toMatch(/without authentication/);
  });
});
