import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskCreateRequest } from "../../src/gen/grpc-js/diego/v1/task.js";
import type { Receptor } from "../../src/receptor/start-receptor.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createGrpcApi } from "./grpc-client.js";

// With --tls-cert/--tls-key the one port serves gRPC (HTTP/2 by ALPN) and REST (HTTP/1.1) over TLS.

let nats: TestNats;
let receptor: Receptor;
let dir: string;
let ca: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "diego-tls-"));
  await promisify(execFile)("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
  ]);
  ca = await readFile(path.join(dir, "cert.pem"));
  nats = await startNats();
  receptor = await startTestReceptor(nats.url, { tls: { cert: ca, key: await readFile(path.join(dir, "key.pem")) } });
});
afterAll(async () => {
  await receptor?.stop();
  await nats?.dispose();
  await rm(dir, { recursive: true, force: true });
});

function httpsGet(urlPath: string): Promise<{ status: number; body: string; httpVersion: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port: receptor.port, path: urlPath, ca }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, httpVersion: res.httpVersion }));
    });
    req.on("error", reject);
  });
}

describe("the API over TLS", () => {
  it("serves gRPC over HTTP/2 and REST over HTTP/1.1 on the same port", async () => {
    const client = createGrpcApi(`127.0.0.1:${receptor.port}`, {}, grpc.credentials.createSsl(ca));
    await client.createTask(
      TaskCreateRequest.fromPartial({ taskGuid: "tls-task", domain: "tls", stack: "lucid64", action: { run: { path: "/bin/true" } } }),
    );
    expect((await client.getTask("tls-task")).taskGuid).toBe("tls-task");
    client.close();

    const res = await httpsGet("/v1/tasks/tls-task");
    expect(res.status).toBe(200);
    expect(res.httpVersion).toBe("1.1");
    expect(JSON.parse(res.body)).toMatchObject({ task_guid: "tls-task", state: "PENDING" });
    const missing = await httpsGet("/v1/tasks/nope");
    expect(missing.status).toBe(404);
  });
});
