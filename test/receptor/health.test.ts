import * as grpc from "@grpc/grpc-js";
import { createFileRegistry, fromBinary, create } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthClient, HealthCheckResponse_ServingStatus as Status, type HealthCheckResponse } from "../../src/gen/grpc-js/grpc/health/v1/health.js";
import { ServerReflectionClient, type ServerReflectionRequest, type ServerReflectionResponse } from "../../src/gen/grpc-js/grpc/reflection/v1/reflection.js";
import { ServerReflectionClient as AlphaReflectionClient } from "../../src/gen/grpc-js/grpc/reflection/v1alpha/reflection.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";

// What a load balancer and grpcurl see: /healthz and /readyz, grpc.health.v1.Health, and server
// reflection. The reflection client here knows only the reflection protocol, no diego proto.

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let health: HealthClient;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url, { auth: { user: "op", password: "secret" } });
  health = new HealthClient(receptor.address, grpc.credentials.createInsecure());
});
afterAll(async () => {
  health?.close();
  await receptor?.stop();
  await nats?.dispose();
});

const check = (service = ""): Promise<Status> =>
  new Promise((resolve, reject) =>
    health.check({ service }, (err: grpc.ServiceError | null, res: HealthCheckResponse) => (err ? reject(err) : resolve(res.status))),
  );

const probe = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const res = await fetch(`${receptor.url}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** Every status a Watch stream sends, as it arrives. */
function watch(service = ""): { seen: Status[]; call: grpc.ClientReadableStream<HealthCheckResponse> } {
  const seen: Status[] = [];
  const call = health.watch({ service });
  call.on("data", (r: HealthCheckResponse) => seen.push(r.status));
  call.on("error", () => undefined);
  return { seen, call };
}

describe("health", () => {
  it("is alive and ready without credentials while NATS is up", async () => {
    expect(await probe("/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    expect(await probe("/readyz")).toEqual({ status: 200, body: { status: "ready" } });
    expect(await check()).toBe(Status.SERVING);
    expect(await check("diego.v1.TaskService")).toBe(Status.SERVING);
    // Everything else still needs credentials.
    expect((await fetch(`${receptor.url}/v1/tasks`)).status).toBe(401);
  });

  it("answers NOT_FOUND for a service it does not serve", async () => {
    await expect(check("no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("flips /readyz and gRPC health to not ready while nats-server is stopped, and back after", async () => {
    const watcher = watch();
    await expect.poll(() => watcher.seen.at(-1), { timeout: 10_000 }).toBe(Status.SERVING);
    await nats.stop();

    await expect.poll(async () => (await probe("/readyz")).status, { timeout: 15_000, interval: 200 }).toBe(503);
    const down = await probe("/readyz");
    expect(down.body.status).toBe("not ready");
    expect(down.body.notReady).toMatchObject({ nats: expect.any(String), tasksBucket: expect.any(String), cellsBucket: expect.any(String), taskIndex: "watch interrupted" });
    expect(await probe("/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    expect(await check()).toBe(Status.NOT_SERVING);
    await expect.poll(() => watcher.seen.at(-1), { timeout: 10_000 }).toBe(Status.NOT_SERVING);

    nats = await nats.restart();
    await expect.poll(async () => (await probe("/readyz")).status, { timeout: 30_000, interval: 250 }).toBe(200);
    expect(await check()).toBe(Status.SERVING);
    await expect.poll(() => watcher.seen.at(-1), { timeout: 10_000 }).toBe(Status.SERVING);
    // Serving, not serving, serving again; each change sent once, never a repeat of the last.
    expect(watcher.seen.slice(0, 2)).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(watcher.seen.every((st, i) => i === 0 || st !== watcher.seen[i - 1])).toBe(true);
    watcher.call.cancel();
  });
});

type ReflectionCtor = typeof ServerReflectionClient;

/** Sends requests one at a time on one reflection stream, as grpcurl does. */
async function reflect(Client: ReflectionCtor, requests: Partial<ServerReflectionRequest>[]): Promise<ServerReflectionResponse[]> {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Basic ${Buffer.from("op:secret").toString("base64")}`);
  const client = new Client(receptor.address, grpc.credentials.createInsecure());
  try {
    const call = client.serverReflectionInfo(metadata);
    const out: ServerReflectionResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (r: ServerReflectionResponse) => out.push(r));
      call.on("end", resolve);
      call.on("error", reject);
    });
    for (const r of requests) call.write({ host: "", ...r });
    call.end();
    await done;
    return out;
  } finally {
    client.close();
  }
}

const decodeFiles = (r: ServerReflectionResponse): FileDescriptorProto[] =>
  (r.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b));

describe("server reflection", () => {
  for (const [version, Client] of [
    ["v1", ServerReflectionClient],
    ["v1alpha", AlphaReflectionClient as unknown as ReflectionCtor],
  ] as const) {
    it(`${version}: lists the services and describes TaskService with its methods`, async () => {
      const [list, bySymbol, byMethod, missing] = await reflect(Client, [
        { listServices: "" },
        { fileContainingSymbol: "diego.v1.TaskService" },
        { fileContainingSymbol: "diego.v1.TaskService.CreateTask" },
        { fileContainingSymbol: "diego.v1.NoSuchThing" },
      ]);
      expect(list!.listServicesResponse!.service.map((s) => s.name)).toEqual(
        expect.arrayContaining([
          "diego.v1.TaskService",
          "diego.v1.CellService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ]),
      );

      // The descriptors alone (the file and its imports) build a registry that resolves the service.
      const files = decodeFiles(bySymbol!);
      expect(files[0]!.name).toBe("diego/v1/service.proto");
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files.reverse() }));
      const service = registry.getService("diego.v1.TaskService")!;
      expect(service.methods.map((m) => m.name)).toEqual(["CreateTask", "GetTask", "ListTasks", "CancelTask", "DeleteTask", "WatchTasks", "StreamLogs"]);
      const createTask = service.methods.find((m) => m.name === "CreateTask")!;
      expect(createTask.input.typeName).toBe("diego.v1.TaskCreateRequest");
      expect(createTask.input.fields.map((f) => f.name)).toContain("task_guid");
      expect(service.methods.find((m) => m.name === "WatchTasks")!.methodKind).toBe("server_streaming");

      expect(decodeFiles(byMethod!)[0]!.name).toBe("diego/v1/service.proto");
      expect(missing!.errorResponse).toMatchObject({ errorCode: grpc.status.NOT_FOUND });
    });
  }

  it("describes a file by name with its imports", async () => {
    const [r] = await reflect(ServerReflectionClient, [{ fileByFilename: "diego/v1/task.proto" }]);
    const names = decodeFiles(r!).map((f) => f.name);
    expect(names[0]).toBe("diego/v1/task.proto");
    expect(names).toContain("diego/v1/actions.proto");
  });
});
