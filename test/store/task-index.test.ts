import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TaskResponseSchema, TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { decodeTaskCreateRequest, taskResponseToJson } from "../../src/model/index.js";
import { createTaskIndex, transitions, type TaskIndex, type TaskStore } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { openTwoViews, type TwoViews } from "../fixtures/two-views.js";

// The index keeps each task as its stored bytes and decodes on demand: what it hands out must
// be exactly the stored task, whether the write was this process's own or came over the watch.

let nats: TestNats;
let views: TwoViews;
let writer: TaskStore;
let reader: TaskStore;
let index: TaskIndex;

beforeAll(async () => {
  nats = await startNats();
  views = await openTwoViews(nats.url);
  ({ writer, index } = views);
  reader = views.reader.store;
});

afterAll(async () => {
  await views?.close();
  await nats?.dispose();
});

const request = (guid: string, domain: string) =>
  decodeTaskCreateRequest({
    task_guid: guid,
    domain,
    stack: "lucid64",
    env: [{ name: "UNICODE", value: "héllo ✓" }],
    action: { run: { path: "/bin/echo", args: ["a", "b"] } },
    annotation: "x".repeat(500),
  });

function seen(guid: string, state: TaskState): Promise<void> {
  return new Promise((resolve) => {
    if (index.get(guid)?.state === state) return resolve();
    const off = index.subscribe((g, _b, after) => {
      if (g === guid && after?.state === state) {
        off();
        resolve();
      }
    });
  });
}

describe("task index", () => {
  it("hands out the stored task as record, protobuf and JSON, for other writers' tasks", async () => {
    const stored = await writer.create(request("idx-1", "idx-a"));
    await seen("idx-1", TaskState.PENDING);
    const e = index.get("idx-1")!;
    expect([e.guid, e.domain, e.revision]).toEqual(["idx-1", "idx-a", stored.revision]);
    expect(e.record).toEqual(stored.record);
    expect(fromBinary(TaskResponseSchema, e.binary())).toEqual(stored.record.task);
    expect(e.jsonBytes().toString("utf8")).toBe(taskResponseToJson(stored.record.task!));
  });

  it("follows changes, and lists JSON per domain", async () => {
    await reader.create(request("idx-2", "idx-b"));
    await writer.create(request("idx-3", "idx-b"));
    await writer.apply("idx-3", transitions.cancel);
    await seen("idx-3", TaskState.COMPLETED);
    const listed = index.listJson("idx-b").map((b) => JSON.parse(b.toString("utf8")) as { task_guid: string; state: string; failure_reason: string });
    expect(listed.map((t) => [t.task_guid, t.state]).sort()).toEqual([
      ["idx-2", "PENDING"],
      ["idx-3", "COMPLETED"],
    ]);
    expect(listed.find((t) => t.task_guid === "idx-3")?.failure_reason).toBe("task was cancelled");
    expect(index.listJson("no-such-domain")).toEqual([]);
    expect(index.get("idx-3")!.record.task!.failed).toBe(true);
  });

  it("encodes JSON ahead of the first list once writes pause, when asked to (the receptor)", async () => {
    const warm = await createTaskIndex(views.reader.kv, undefined, { warmJson: true });
    const cold = await createTaskIndex(views.reader.kv);
    try {
      await Promise.all([warm.ready(), cold.ready()]);
      await Promise.all(Array.from({ length: 30 }, (_, i) => writer.create(request(`warm-${i}`, "idx-warm"))));
      await vi.waitFor(() => expect(cold.list("idx-warm").length).toBe(30));
      await vi.waitFor(() => expect(warm.list("idx-warm").filter((t) => t.jsonReady).length).toBe(30), { timeout: 5000 });
      expect(cold.list("idx-warm").some((t) => t.jsonReady)).toBe(false);
      const byGuid = (parts: Buffer[]) => parts.map((b) => JSON.parse(b.toString()) as { task_guid: string }).sort((x, y) => x.task_guid.localeCompare(y.task_guid));
      expect(byGuid(warm.listJson("idx-warm"))).toEqual(byGuid(cold.listJson("idx-warm")));
    } finally {
      await warm.stop();
      await cold.stop();
    }
  });
});
