import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskCreateRequest } from "../../src/gen/grpc-js/diego/v1/task.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createGrpcApi, grpcError, type GrpcApi } from "./grpc-client.js";
import { createRestClient, uniqueGuid, type ErrorBody, type RestClient } from "./rest-client.js";

// While nats-server is down the receptor cannot store anything. gRPC clients are told
// UNAVAILABLE, which they may retry; REST keeps the contract's 500 UnknownError. When the server
// is back, the receptor serves again without a restart.

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let grpcApi: GrpcApi;
let rest: RestClient;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  grpcApi = createGrpcApi(receptor.address);
  rest = createRestClient(receptor.url);
});
afterAll(async () => {
  grpcApi?.close();
  await receptor?.stop();
  await nats?.dispose();
});

const task = (guid: string): TaskCreateRequest =>
  TaskCreateRequest.fromPartial({ taskGuid: guid, domain: "outage", stack: "s", action: { run: { path: "/x" } } });

describe("a receptor whose nats-server is down", () => {
  it("answers UNAVAILABLE over gRPC and 500 UnknownError over REST, then serves again when it is back", async () => {
    await grpcApi.createTask(task(uniqueGuid("before")));
    await nats.stop();

    // Both wait out the store's request timeout (5 s), so side by side.
    const [viaGrpc, viaRest] = await Promise.all([
      grpcError(grpcApi.createTask(task(uniqueGuid("during")))),
      rest.createTask({ task_guid: uniqueGuid("during-rest"), domain: "outage", stack: "s", action: { run: { path: "/x" } } }),
    ]);
    expect(viaGrpc.code).toBe(grpc.status.UNAVAILABLE);
    expect(viaGrpc.details).toMatch(/^UnknownError: KV request for '.+' failed: /);
    expect(viaRest.status).toBe(500);
    expect(viaRest.json<ErrorBody>().name).toBe("UnknownError");

    nats = await nats.restart();
    // The receptor reconnects on its own (every 250 ms); the first calls may still miss it.
    let created = "";
    const createOne = async (): Promise<boolean> => {
      const guid = uniqueGuid("after"); // a fresh one each time: a call that timed out may still land
      await grpcApi.createTask(task(guid));
      created = guid;
      return true;
    };
    await expect.poll(() => createOne().catch(() => false), { timeout: 30_000, interval: 250 }).toBe(true);
    expect((await grpcApi.getTask(created)).taskGuid).toBe(created);
  });
});
