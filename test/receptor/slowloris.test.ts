import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid } from "./rest-client.js";

// Slow clients: a connection that dribbles its headers or its body a byte at a time is closed
// once the header or request timeout has passed, over HTTP/1.1 and HTTP/2 alike. (Before, any
// connection that had sent one byte stayed open for ever.)

const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 2_000;
/** node:http checks its timeouts every quarter of the header timeout; and a busy machine. */
const SLACK_MS = 1_500;
const DRIP_MS = 100;

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url, {
    headersTimeoutMs: HEADERS_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    firstByteTimeoutMs: HEADERS_TIMEOUT_MS,
  });
});
afterAll(async () => {
  await receptor?.stop();
  await nats?.dispose();
});

interface Dripped {
  /** Milliseconds from the first byte until the receptor closed the connection. */
  closedAfterMs: number;
  /** What the receptor sent before closing. */
  reply: string;
}

/** Opens a connection, sends `head` at once, then `drip` one byte every DRIP_MS until closed. */
function drip(head: Buffer | string, drip: Buffer | string): Promise<Dripped> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(receptor.port, "127.0.0.1");
    const bytes = Buffer.from(drip);
    let reply = "";
    let timer: NodeJS.Timeout | undefined;
    let start = 0;
    socket.once("connect", () => {
      start = Date.now();
      socket.write(head);
      let i = 0;
      timer = setInterval(() => {
        if (!socket.destroyed && !socket.writableEnded) socket.write(bytes.subarray(i % bytes.length, (i % bytes.length) + 1));
        i++;
      }, DRIP_MS);
    });
    socket.on("data", (c: Buffer) => (reply += c.toString("latin1")));
    socket.on("error", () => undefined); // a reset is a close too
    socket.once("close", () => {
      clearInterval(timer);
      resolve({ closedAfterMs: Date.now() - start, reply });
    });
    socket.once("timeout", () => reject(new Error("never closed")));
  });
}

async function expectHealthy(): Promise<void> {
  const api = createRestClient(receptor.url);
  const guid = uniqueGuid("after-slow");
  expect((await api.createTask({ task_guid: guid, domain: "slow", stack: "lucid64", action: { run: { path: "/bin/true" } } })).status).toBe(201);
  expect((await api.getTask(guid)).status).toBe(200);
}

describe("HTTP/1.1", () => {
  it("closes a connection sending its headers a byte at a time within the header timeout, with 408", async () => {
    const r = await drip("GET /v1/tasks HTTP/1.1\r\nHost: receptor\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    expect(r.reply.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(r.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
    await expectHealthy();
  });

  it("closes a connection sending its body a byte at a time within the request timeout", async () => {
    const r = await drip("POST /v1/tasks HTTP/1.1\r\nHost: receptor\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", "{");
    expect(r.reply.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(r.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + SLACK_MS);
    await expectHealthy();
  });
});

describe("HTTP/2", () => {
  const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

  it("closes a session dribbling one HEADERS frame within the header timeout", async () => {
    // A HEADERS frame on stream 1 promising 64 bytes of header block, sent a byte at a time.
    const frame = Buffer.concat([Buffer.from([0, 0, 64, 1, 4, 0, 0, 0, 1]), Buffer.alloc(64, 0x82)]);
    const r = await drip(Buffer.concat([PREFACE, EMPTY_SETTINGS]), frame);
    expect(r.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    await expectHealthy();
  });

  it("answers 408 to a stream sending its body a byte at a time, within the request timeout", async () => {
    const session = http2.connect(receptor.url);
    try {
      const start = Date.now();
      const req = session.request({ ":method": "POST", ":path": "/v1/tasks", "content-type": "application/json" });
      const timer = setInterval(() => {
        if (!req.destroyed && !req.writableEnded) req.write("{");
      }, DRIP_MS);
      const status = await new Promise<number | undefined>((resolve) => {
        req.on("response", (h) => resolve(h[":status"]));
        req.on("error", () => resolve(undefined));
        req.on("close", () => resolve(undefined));
      });
      const ended = await new Promise<number>((resolve) => {
        if (req.closed) resolve(Date.now() - start);
        req.on("close", () => resolve(Date.now() - start));
        req.resume();
      });
      clearInterval(timer);
      expect(status).toBe(408);
      expect(ended).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      expect(ended).toBeLessThan(REQUEST_TIMEOUT_MS + SLACK_MS);
      // The session itself still serves.
      const ok = session.request({ ":method": "GET", ":path": "/v1/cells" });
      const okStatus = await new Promise<number | undefined>((resolve) => ok.on("response", (h) => resolve(h[":status"])));
      ok.resume();
      expect(okStatus).toBe(200);
    } finally {
      session.close();
    }
    await expectHealthy();
  });

  it("leaves a stream that is served in time alone", async () => {
    const session = http2.connect(receptor.url);
    try {
      // An event stream outlives both timeouts: only the request must arrive in time.
      const req = session.request({ ":method": "GET", ":path": "/v1/events" });
      const chunks: string[] = [];
      req.on("data", (c: Buffer) => chunks.push(c.toString()));
      await new Promise((r) => req.once("response", r));
      await new Promise((r) => setTimeout(r, REQUEST_TIMEOUT_MS + 500));
      expect(req.closed).toBe(false);
      req.close();
    } finally {
      session.close();
    }
  });
});

describe("over TLS", () => {
  it("closes an HTTP/1.1 connection dribbling its headers, and an idle HTTP/2 session dribbling a frame", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "diego-slow-tls-"));
    await promisify(execFile)("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
    ]);
    const ca = await readFile(path.join(dir, "cert.pem"));
    const r = await startTestReceptor(nats.url, {
      tls: { cert: ca, key: await readFile(path.join(dir, "key.pem")) },
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    const dripTls = (alpn: string, head: Buffer | string, bytes: Buffer): Promise<Dripped> =>
      new Promise((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port: r.port, ca, ALPNProtocols: [alpn] });
        let reply = "";
        let timer: NodeJS.Timeout | undefined;
        let start = 0;
        socket.once("secureConnect", () => {
          start = Date.now();
          socket.write(head);
          let i = 0;
          timer = setInterval(() => {
            if (!socket.destroyed && !socket.writableEnded) socket.write(bytes.subarray(i % bytes.length, (i % bytes.length) + 1));
            i++;
          }, DRIP_MS);
        });
        socket.on("data", (c: Buffer) => (reply += c.toString("latin1")));
        socket.on("error", () => undefined);
        socket.once("close", () => {
          clearInterval(timer);
          resolve({ closedAfterMs: Date.now() - start, reply });
        });
      });
    try {
      const h1 = await dripTls("http/1.1", "GET /v1/tasks HTTP/1.1\r\nHost: receptor\r\n", Buffer.from("X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"));
      expect(h1.reply.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
      expect(h1.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
      const frame = Buffer.concat([Buffer.from([0, 0, 64, 1, 4, 0, 0, 0, 1]), Buffer.alloc(64, 0x82)]);
      const h2 = await dripTls("h2", Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0000\u0004\u0000\u0000\u0000\u0000\u0000", "latin1"), frame);
      expect(h2.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
    } finally {
      await r.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
