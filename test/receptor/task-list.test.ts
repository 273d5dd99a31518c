import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListTasksRequestSchema, ListTasksResponseSchema } from "../../src/gen/diego/v1/service_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createGrpcApi, type GrpcApi } from "./grpc-client.js";
import { createRestClient, type RestClient } from "./rest-client.js";

// Lists of many tasks after many changes: the receptor keeps tasks and their JSON in an arena
// that it compacts as changes leave old bytes behind (src/store/byte-arena.ts), and a list is
// copied out of it in slices. Every task must still be listed once, as it now is, in REST and
// gRPC, whole lists and per domain.

const TASKS = 3000;
const DOMAINS = 3;
/** Large enough that the changes below leave megabytes of old bytes to compact. */
const ANNOTATION = "a".repeat(1500);

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;
let rest: RestClient;
let grpcApi: GrpcApi;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
  rest = createRestClient(receptor.url);
  grpcApi = createGrpcApi(receptor.address, { "grpc.max_receive_message_length": -1 });
});

afterAll(async () => {
  grpcApi?.close();
  await receptor?.stop();
  await nats?.dispose();
});

/** Runs `call(i)` for i in [0, n), `width` at a time. */
async function inParallel(n: number, width: number, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    for (let i = next++; i < n; i = next++) await call(i);
  }));
}

const guid = (i: number): string => `list-${i}`;
const domainOf = (i: number): string => `list-domain-${i % DOMAINS}`;
/** Five of six tasks are cancelled: each old record and JSON becomes garbage amid live ones. */
const cancelled = (i: number): boolean => i % 6 !== 0;

interface Listed {
  task_guid: string;
  domain: string;
  state: string;
  annotation: string;
}

async function restList(path: string): Promise<Listed[]> {
  const r = await rest.request("GET", path);
  expect(r.status).toBe(200);
  expect(Number(r.headers.get("content-length"))).toBe(Buffer.byteLength(r.text));
  return r.json<Listed[]>();
}

/** ListTasks over HTTP/1.1 in Connect's binary or gRPC-Web: the tasks in REST spelling. */
async function binaryList(contentType: "application/proto" | "application/grpc-web+proto"): Promise<Listed[]> {
  const web = contentType !== "application/proto";
  const request = toBinary(ListTasksRequestSchema, create(ListTasksRequestSchema, {}));
  const res = await fetch(`${receptor.url}/diego.v1.TaskService/ListTasks`, {
    method: "POST",
    headers: { "content-type": contentType },
    body: web ? Buffer.concat([Buffer.from([0, 0, 0, 0, request.length]), request]) : request,
  });
  expect(res.status).toBe(200);
  const body = Buffer.from(await res.arrayBuffer());
  expect(Number(res.headers.get("content-length"))).toBe(body.length);
  let message = body;
  if (web) {
    // One message frame, then the trailers frame.
    const length = body.readUInt32BE(1);
    message = body.subarray(5, 5 + length);
    expect(body.subarray(5 + length + 5).toString()).toBe("grpc-status:0\r\n");
  }
  return fromBinary(ListTasksResponseSchema, message).tasks.map((t) => ({
    task_guid: t.taskGuid,
    domain: t.domain,
    state: TaskState[t.state],
    annotation: t.annotation,
  }));
}

/** Every task once, each in the state it should be in (after the cancels, unless `before`). */
function expectEveryTaskOnce(listed: Listed[], which: (i: number) => boolean, before = false): void {
  const want = Array.from({ length: TASKS }, (_, i) => i).filter(which);
  expect(listed.map((t) => t.task_guid).sort()).toEqual(want.map(guid).sort());
  const byGuid = new Map(listed.map((t) => [t.task_guid, t]));
  for (const i of want) {
    const t = byGuid.get(guid(i))!;
    expect([t.domain, t.state, t.annotation]).toEqual([domainOf(i), cancelled(i) && !before ? "COMPLETED" : "PENDING", ANNOTATION]);
  }
}

describe("listing many tasks after many changes", () => {
  it("lists every task exactly once, as it now is, in REST and gRPC, whole and per domain", { timeout: 120_000 }, async () => {
    await inParallel(TASKS, 16, async (i) => {
      const r = await rest.createTask({ task_guid: guid(i), domain: domainOf(i), stack: "lucid64", annotation: ANNOTATION, action: { run: { path: "/bin/true" } } });
      expect(r.status).toBe(201);
    });
    // A list between the changes makes every task's JSON, so the changes leave that behind too.
    expectEveryTaskOnce(await restList("/v1/tasks"), () => true, true);
    await inParallel(TASKS, 16, async (i) => {
      if (!cancelled(i)) return;
      const r = await rest.cancelTask(guid(i));
      expect(r.status).toBe(200);
    });

    expectEveryTaskOnce(await restList("/v1/tasks"), () => true);
    expectEveryTaskOnce(await restList(`/v1/domains/${domainOf(1)}/tasks`), (i) => i % DOMAINS === 1);
    expectEveryTaskOnce(await restList(`/v1/tasks?domain=${domainOf(2)}`), (i) => i % DOMAINS === 2);

    const { tasks } = await grpcApi.listTasks();
    expectEveryTaskOnce(
      tasks.map((t) => ({ task_guid: t.taskGuid, domain: t.domain, state: t.state === 4 ? "COMPLETED" : t.state === 1 ? "PENDING" : String(t.state), annotation: t.annotation })),
      () => true,
    );
    // The same list in Connect's and gRPC-Web's binary framing (their own framing of the parts).
    expectEveryTaskOnce(await binaryList("application/proto"), () => true);
    expectEveryTaskOnce(await binaryList("application/grpc-web+proto"), () => true);

    // Deleting the cancelled ones leaves exactly the others.
    await inParallel(TASKS, 16, async (i) => {
      if (cancelled(i)) expect((await rest.deleteTask(guid(i))).status).toBe(200);
    });
    expectEveryTaskOnce(await restList("/v1/tasks"), (i) => !cancelled(i));

    // What the changes left behind was compacted away: the index holds little more than the
    // records (and JSON) of the tasks still there. (Without compaction: the 11 MB of slabs the
    // first records and JSON filled, each sixth still live.)
    const metrics = (await rest.request("GET", "/metrics")).text;
    const gauge = (kind: string): number => Number(new RegExp(`^diego_task_index_bytes\\{kind="${kind}"\\} (\\S+)$`, "m").exec(metrics)?.[1]);
    const [live, slabs] = [gauge("live"), gauge("slabs")];
    expect(live).toBeGreaterThan((TASKS / 6) * ANNOTATION.length * 2);
    // Up to 4 MiB of garbage waits for the next compaction, and the slab being filled has room.
    expect(slabs).toBeLessThan(live + 7 * 2 ** 20);
  });

  it("answers an empty list as []", async () => {
    const r = await rest.request("GET", "/v1/domains/no-such-domain/tasks");
    expect([r.status, r.text, r.headers.get("content-length")]).toEqual([200, "[]", "2"]);
  });
});
