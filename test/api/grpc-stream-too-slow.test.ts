import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLoad } from "../../bench/load.js";
import { LogMessageSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskServiceClient } from "../../src/gen/grpc-js/diego/v1/service.js";
import { decodeTaskCreateRequest } from "../../src/model/index.js";
import { connectNats, openTasksBucket } from "../../src/nats/index.js";
import { subjects } from "../../src/nats/subjects.js";
import type { Receptor } from "../../src/receptor/start-receptor.js";
import { createTaskStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";

// A gRPC stream whose reader falls behind ends with RESOURCE_EXHAUSTED naming StreamTooSlow, as
// the README promises, not with INTERNAL: streaming handlers map errors the way unary ones do.

const STREAM_BACKLOG = 50;
const MESSAGES = 2000;

let nats: TestNats;
let receptor: Receptor;
let client: TaskServiceClient;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url, { streamBacklog: STREAM_BACKLOG });
  client = new TaskServiceClient(`127.0.0.1:${receptor.port}`, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  await receptor?.stop();
  await nats?.dispose();
});

interface Stalled {
  /** Resolves once the stream has ended: how many messages it delivered and its error. */
  outcome: Promise<{ received: number; error?: grpc.ServiceError }>;
  /** Reads on (the reader stopped after the first message). */
  resume(): void;
}

/**
 * Resolves once the first message has arrived, and stops reading there. `poke` runs now and then
 * until then: whatever makes the stream send something.
 */
async function firstThenStall<T>(stream: grpc.ClientReadableStream<T>, poke: () => void): Promise<Stalled> {
  let received = 0;
  let error: grpc.ServiceError | undefined;
  stream.on("error", (e: grpc.ServiceError) => (error = e));
  // The last event of a call, after its messages and any error.
  const outcome = new Promise<{ received: number; error?: grpc.ServiceError }>((resolve) => stream.on("status", () => resolve({ received, error })));
  const timer = setInterval(poke, 50);
  await new Promise<void>((resolve) =>
    stream.once("data", () => {
      received++;
      clearInterval(timer);
      stream.pause();
      resolve();
    }),
  );
  return {
    outcome,
    resume() {
      stream.on("data", () => received++);
      stream.resume();
    },
  };
}

describe("gRPC streams whose reader stops reading", () => {
  it("WatchTasks ends with RESOURCE_EXHAUSTED (StreamTooSlow), and the receptor goes on", async () => {
    const nc = await connectNats({ url: nats.url, name: "grpc-stall-writer" });
    try {
      await openTasksBucket(nc);
      const store = createTaskStore(nc);
      // About 9 KB each: enough to fill the connection's windows and then the backlog.
      const body = (i: number) =>
        decodeTaskCreateRequest({ task_guid: `grpc-stall-${i}`, domain: "grpc-stalled", stack: "s", action: { run: { path: "/x" } }, annotation: "a".repeat(9000) });
      const stream = client.watchTasks({ domain: "grpc-stalled" });
      // Changes go nowhere until the receptor watches: make one now and then until one arrives.
      let pokes = 0;
      const stalled = await firstThenStall(stream, () => void store.create(body(-++pokes)));
      const created = await runLoad(MESSAGES, 50, (i) => store.create(body(i)));
      expect(created.errors).toBe(0);

      stalled.resume();
      const { received, error } = await stalled.outcome;
      expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(error?.details).toBe(`StreamTooSlow: the reader fell more than ${STREAM_BACKLOG} messages behind; reconnect to go on`);
      expect(error?.metadata.get("diego-error-name")).toEqual(["StreamTooSlow"]);
      expect(received).toBeLessThan(MESSAGES);
      // Still serving.
      await new Promise<void>((resolve, reject) => client.getTask({ taskGuid: "grpc-stall-0" }, (err) => (err ? reject(err) : resolve())));
    } finally {
      await nc.close();
    }
  });

  it("StreamLogs does the same", async () => {
    const nc = await connectNats({ url: nats.url, name: "grpc-stall-logger" });
    try {
      const line = toBinary(LogMessageSchema, create(LogMessageSchema, { logGuid: "grpc-stalled-log", sourceName: "T", message: "l".repeat(9000) }));
      const stream = client.streamLogs({ logGuid: "grpc-stalled-log" });
      // Lines go nowhere until the receptor subscribes: send one now and then until one arrives.
      const stalled = await firstThenStall(stream, () => nc.publish(subjects.logs("grpc-stalled-log"), line));
      for (let i = 0; i < MESSAGES; i++) nc.publish(subjects.logs("grpc-stalled-log"), line);
      await nc.flush();

      stalled.resume();
      const { received, error } = await stalled.outcome;
      expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(error?.details).toMatch(/^StreamTooSlow: /);
      expect(received).toBeLessThan(MESSAGES);
    } finally {
      await nc.close();
    }
  });
});
