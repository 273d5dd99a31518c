import http2 from "node:http2";
import net from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceptor, type Receptor } from "../../src/receptor/start-receptor.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// The receptor reads a connection's first bytes to tell HTTP/2 from HTTP/1.1. A connection that
// never sends any must not hold a descriptor for ever; one that does is then watched by the
// server it went to, with that server's own (longer) timeouts.

const FIRST_BYTE_TIMEOUT_MS = 300;

let nats: TestNats;
let receptor: Receptor;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startReceptor({
    natsUrl: nats.url,
    host: "127.0.0.1",
    port: 0,
    cellTtlMs: 10_000,
    logger: pino({ level: "silent" }),
    firstByteTimeoutMs: FIRST_BYTE_TIMEOUT_MS,
  });
});
afterAll(async () => {
  await receptor?.stop();
  await nats?.dispose();
});

const connect = (): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const s = net.connect(receptor.port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });

const closed = (s: net.Socket): Promise<number> => {
  const start = Date.now();
  return new Promise((resolve) => s.once("close", () => resolve(Date.now() - start)));
};

/** Sends one HTTP/1.1 request on the socket and resolves with the reply's status line. */
const request = (s: net.Socket, path: string): Promise<string> =>
  new Promise((resolve) => {
    s.once("data", (chunk: Buffer) => resolve(chunk.toString("latin1").split("\r\n")[0]!));
    s.write(`GET ${path} HTTP/1.1\r\nHost: receptor\r\n\r\n`);
  });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("connections", () => {
  it("closes one that sends nothing", async () => {
    const s = await connect();
    const after = await closed(s);
    expect(after).toBeGreaterThanOrEqual(FIRST_BYTE_TIMEOUT_MS - 50);
  });

  it("keeps an HTTP/1.1 connection open past that time once it has spoken", async () => {
    const s = await connect();
    try {
      expect(await request(s, "/v1/cells")).toBe("HTTP/1.1 200 OK");
      await sleep(2 * FIRST_BYTE_TIMEOUT_MS);
      expect(s.destroyed).toBe(false);
      expect(await request(s, "/v1/tasks")).toBe("HTTP/1.1 200 OK");
    } finally {
      s.destroy();
    }
  });

  it("keeps an idle HTTP/2 connection open (gRPC clients hold theirs)", async () => {
    const session = http2.connect(`http://127.0.0.1:${receptor.port}`);
    const get = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = session.request({ ":path": path });
        req.once("response", (h) => resolve(Number(h[":status"])));
        req.once("error", reject);
        req.resume();
        req.end();
      });
    try {
      expect(await get("/v1/cells")).toBe(200);
      await sleep(2 * FIRST_BYTE_TIMEOUT_MS);
      expect(session.closed || session.destroyed).toBe(false);
      expect(await get("/v1/cells")).toBe(200);
    } finally {
      session.close();
    }
  });
});
