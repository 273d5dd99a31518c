import { fromBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogStreamer } from "../../cell-agent/src/logs/index.js";
import { LogMessageSchema, type LogMessage } from "../../src/gen/diego/v1/internal_pb.js";
import { connectNats } from "../../src/nats/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

let nats: TestNats;
let nc: NatsConnection;
let seq = 0;

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "logs-test" });
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** A streamer for a fresh log guid plus what arrives on diego.logs.> for it. */
async function stream(opts: { logGuid?: string; defaultSource?: string } = {}) {
  const logGuid = opts.logGuid ?? `guid-${++seq}`;
  const received: LogMessage[] = [];
  nc.subscribe("diego.logs.>", {
    callback: (err, msg) => {
      if (err) return;
      const m = fromBinary(LogMessageSchema, msg.data);
      if (m.logGuid === logGuid) received.push(m);
    },
  });
  await nc.flush();
  const logs = createLogStreamer({ nc, logGuid, taskGuid: "the-task", defaultSource: opts.defaultSource });
  return { logs, received, texts: () => received.map((m) => m.message) };
}

describe("log streamer", () => {
  it("splits output at \\n and \\r, drops empty messages and flushes the partial last line at end", async () => {
    const { logs, texts } = await stream();
    const w = logs.source();
    w.stdout(Buffer.from("a\r\nb\n\nc\rhel"));
    w.stdout(Buffer.from("lo\nwor"));
    w.stdout(Buffer.from("ld"));
    await logs.flush();
    expect(texts()).toEqual(["a", "b", "c", "hello"]);
    w.end();
    await logs.flush();
    expect(texts()).toEqual(["a", "b", "c", "hello", "world"]);
  });

  it("cuts lines longer than 4096 bytes, never inside a UTF-8 character", async () => {
    const { logs, received, texts } = await stream();
    const w = logs.source();
    w.stdout(Buffer.from(`${"x".repeat(10_000)}\n`));
    const euros = "€".repeat(2000); // 6000 bytes
    w.stderr(Buffer.from(euros.slice(0, 700)));
    w.stderr(Buffer.from(`${euros.slice(700)}\n`));
    await logs.flush();
    expect(texts().slice(0, 3).map((t) => t.length)).toEqual([4096, 4096, 1808]);
    const err = received.filter((m) => m.stream === 2).map((m) => m.message);
    expect(err.every((t) => Buffer.byteLength(t) <= 4096 && !t.includes("\uFFFD"))).toBe(true);
    expect(err.join("")).toBe(euros);
  });

  it("fills every field: log/task guid, source (LOG by default), stream 1/2 and ns timestamps", async () => {
    const { logs, received } = await stream();
    expect(logs.defaultSource).toBe("LOG");
    const w = logs.source();
    w.stdout(Buffer.from("out\n"));
    w.stderr(Buffer.from("err\n"));
    logs.source("CELL").line("Exit status 0");
    await logs.flush();
    expect(received.map((m) => [m.sourceName, m.stream, m.message, m.taskGuid])).toEqual([
      ["LOG", 1, "out", "the-task"],
      ["LOG", 2, "err", "the-task"],
      ["CELL", 1, "Exit status 0", "the-task"],
    ]);
    const ns = BigInt(Date.now()) * 1_000_000n;
    for (const m of received) expect(ns - m.timestamp).toBeLessThan(10_000_000_000n);
    expect(received[0]!.timestamp <= received[1]!.timestamp).toBe(true);
  });

  it("uses the task's log_source as the default source name", async () => {
    const { logs, received } = await stream({ defaultSource: "APP" });
    logs.source("").line("hi");
    await logs.flush();
    expect(received.map((m) => m.sourceName)).toEqual(["APP"]);
  });

  it("keeps order, and writers on one source never mix their partial lines", async () => {
    const { logs, texts } = await stream();
    const a = logs.source("APP");
    const b = logs.source("APP");
    a.stdout(Buffer.from("ab"));
    b.stdout(Buffer.from("xyz\n"));
    a.stdout(Buffer.from("cd\n"));
    for (let i = 0; i < 500; i++) a.stdout(Buffer.from(`line ${i}\n`));
    await logs.flush();
    expect(texts()).toEqual(["xyz", "abcd", ...Array.from({ length: 500 }, (_, i) => `line ${i}`)]);
  });

  it("publishes nothing when the task has no log_guid", async () => {
    const all: string[] = [];
    nc.subscribe("diego.logs.>", { callback: (_e, msg) => void all.push(msg.subject) });
    await nc.flush();
    const silent = createLogStreamer({ nc, logGuid: "", taskGuid: "t" });
    silent.source().stdout(Buffer.from("secret\n"));
    silent.source().line("Exit status 0");
    await silent.flush();
    const sentinel = createLogStreamer({ nc, logGuid: "sentinel", taskGuid: "t" });
    sentinel.source().line("after");
    await sentinel.flush();
    expect(all).toEqual(["diego.logs.sentinel"]);
  });
});
