import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogMessageSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { decodeTaskCreateRequest } from "../../src/model/index.js";
import { connectNats, openTasksBucket } from "../../src/nats/index.js";
import { subjects } from "../../src/nats/subjects.js";
import type { Receptor } from "../../src/receptor/start-receptor.js";
import { createTaskStore } from "../../src/store/index.js";
import { runLoad } from "../../bench/load.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";

// The receptor reads a connection's first bytes to tell HTTP/2 from HTTP/1.1. A connection that
// never sends any must not hold a descriptor for ever; one that does is then watched by the
// server it went to, with that server's own (longer) timeouts. A stream whose reader stops
// reading must not make the receptor buffer without end.

// Long enough that a busy machine does not close a test's own connections before they speak.
const FIRST_BYTE_TIMEOUT_MS = 1_000;
const STREAM_BACKLOG = 50;
const KEEP_ALIVE_MS = 200;

let nats: TestNats;
let receptor: Receptor;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url, {
    firstByteTimeoutMs: FIRST_BYTE_TIMEOUT_MS,
    streamBacklog: STREAM_BACKLOG,
    streamKeepAliveMs: KEEP_ALIVE_MS,
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

/** Opens an event stream on a raw socket and stops reading it once it has started. */
async function stalledStream(path: string): Promise<{ rest(): Promise<string> }> {
  const s = await connect();
  const chunks: Buffer[] = [];
  // The response ends with chunked encoding's last chunk; the connection itself stays open.
  const ended = new Promise<void>((resolve) => {
    let tail = "";
    s.on("data", (c: Buffer) => {
      tail = (tail + c.toString("latin1")).slice(-16);
      if (tail.endsWith("\r\n0\r\n\r\n")) resolve();
    });
  });
  await new Promise<void>((resolve) => {
    s.on("data", (c: Buffer) => {
      chunks.push(c);
      if (Buffer.concat(chunks).includes(": connected")) resolve();
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: receptor\r\n\r\n`);
  });
  s.pause();
  return {
    /** Reads on to the end of the response, which only the server can end. */
    async rest() {
      s.resume();
      await ended;
      s.destroy();
      return Buffer.concat(chunks).toString("utf8");
    },
  };
}

/** The events of a Server-Sent Events response (each sent in a chunk of its own). */
const eventsIn = (text: string): Array<{ event: string; data: unknown }> =>
  [...text.matchAll(/event: (\S+)\ndata: ([^\n]*)\n/g)].map((m) => ({ event: m[1]!, data: JSON.parse(m[2]!) as unknown }));

describe("a large list", () => {
  it("arrives whole, with its Content-Length, at a client that reads slowly", async () => {
    const nc = await connectNats({ url: nats.url, name: "big-list-writer" });
    try {
      await openTasksBucket(nc);
      const store = createTaskStore(nc);
      const body = (i: number) => decodeTaskCreateRequest({ task_guid: `big-${i}`, domain: "big-list", stack: "s", action: { run: { path: "/x" } }, annotation: "b".repeat(2000) });
      expect((await runLoad(400, 50, (i) => store.create(body(i)))).errors).toBe(0);
      // Wait until all 400 are listed. (Not on the raw connection: it would be closed as silent.)
      const listed400 = async () => ((await (await fetch(`http://127.0.0.1:${receptor.port}/v1/domains/big-list/tasks`)).json()) as unknown[]).length;
      await expect.poll(listed400, { timeout: 20_000 }).toBe(400);
      const s = await connect();
      const raw: Buffer[] = [];
      const done = new Promise<void>((resolve) =>
        s.on("data", (c: Buffer) => {
          raw.push(c);
          const text = Buffer.concat(raw);
          const head = text.indexOf("\r\n\r\n");
          const length = Number(/content-length: (\d+)/i.exec(text.subarray(0, head).toString())?.[1]);
          if (head > 0 && text.length - head - 4 >= length) resolve();
        }),
      );
      // A reader that pauses after each read.
      s.on("data", () => {
        s.pause();
        setTimeout(() => s.resume(), 5);
      });
      s.write("GET /v1/domains/big-list/tasks HTTP/1.1\r\nHost: receptor\r\n\r\n");
      await done;
      s.destroy();
      const text = Buffer.concat(raw);
      const head = text.indexOf("\r\n\r\n");
      const length = Number(/content-length: (\d+)/i.exec(text.subarray(0, head).toString())![1]);
      expect(length).toBeGreaterThan(3 * 256 * 1024); // several slices
      const listed = JSON.parse(text.subarray(head + 4).toString("utf8")) as Array<{ task_guid: string }>;
      expect(text.length - head - 4).toBe(length);
      expect(new Set(listed.map((t) => t.task_guid)).size).toBe(400);
    } finally {
      await nc.close();
    }
  });
});

describe("an idle event stream", () => {
  it("gets a comment line now and then, so that proxies do not take it for a dead connection", async () => {
    const s = await connect();
    try {
      const text = await new Promise<string>((resolve) => {
        let got = "";
        s.on("data", (c: Buffer) => {
          got += c.toString("latin1");
          if (got.split(": keepalive\n\n").length > 2) resolve(got); // two of them
        });
        s.write("GET /v1/events?domain=nobody-here HTTP/1.1\r\nHost: receptor\r\n\r\n");
      });
      expect(text).toContain(": connected\n\n");
      expect(text).not.toContain("event:");
    } finally {
      s.destroy();
    }
  });
});

describe("event streams whose reader stops reading", () => {
  it("end with a StreamTooSlow event once the reader is too far behind, and the receptor goes on", async () => {
    const stream = await stalledStream("/v1/events?domain=stalled");
    const nc = await connectNats({ url: nats.url, name: "stall-writer" });
    try {
      await openTasksBucket(nc);
      const store = createTaskStore(nc);
      // Enough events, of about 9 KB each, to fill the kernel's buffers and then the backlog.
      const body = (i: number) => decodeTaskCreateRequest({ task_guid: `stall-${i}`, domain: "stalled", stack: "s", action: { run: { path: "/x" } }, annotation: "a".repeat(9000) });
      const created = await runLoad(2000, 50, (i) => store.create(body(i)));
      expect(created.errors).toBe(0);
      const events = eventsIn(await stream.rest());
      expect(events.at(-1)).toEqual({ event: "error", data: { name: "StreamTooSlow", message: "the reader fell more than 50 messages behind; reconnect to go on" } });
      expect(events.filter((e) => e.event === "task_created").length).toBeLessThan(2000);
      const s = await connect();
      expect(await request(s, "/v1/cells")).toBe("HTTP/1.1 200 OK");
      s.destroy();
    } finally {
      await nc.close();
    }
  });

  it("do the same for a task's log lines", async () => {
    const stream = await stalledStream("/v1/logs/stalled-log");
    const nc = await connectNats({ url: nats.url, name: "stall-logger" });
    try {
      const line = toBinary(LogMessageSchema, create(LogMessageSchema, { logGuid: "stalled-log", sourceName: "T", message: "l".repeat(9000) }));
      for (let i = 0; i < 2000; i++) nc.publish(subjects.logs("stalled-log"), line);
      await nc.flush();
      const events = eventsIn(await stream.rest());
      expect(events.at(-1)).toMatchObject({ event: "error", data: { name: "StreamTooSlow" } });
      expect(events.filter((e) => e.event === "log").length).toBeLessThan(2000);
    } finally {
      await nc.close();
    }
  });
});
