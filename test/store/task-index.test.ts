import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TaskResponseSchema, TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { decodeTaskCreateRequest, taskResponseToJson } from "../../src/model/index.js";
import { taskBinaryView, taskJsonView } from "../../src/api/index.js";
import { createTaskIndex, transitions, type IndexedTask, type TaskIndex, type TaskStore, type Transition } from "../../src/store/index.js";
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

// The index holds what the API layer renders of each task as opaque views (src/api).
const jsonBytes = (e: IndexedTask): Buffer => e.view(taskJsonView);
const listJson = (i: TaskIndex, domain: string): Buffer[] => i.list(domain).map(jsonBytes);

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
    expect(fromBinary(TaskResponseSchema, e.view(taskBinaryView))).toEqual(stored.record.task);
    expect(jsonBytes(e).toString("utf8")).toBe(taskResponseToJson(stored.record.task!));
  });

  it("follows changes, and lists JSON per domain", async () => {
    await reader.create(request("idx-2", "idx-b"));
    await writer.create(request("idx-3", "idx-b"));
    await writer.apply("idx-3", transitions.cancel);
    await seen("idx-3", TaskState.COMPLETED);
    const listed = listJson(index, "idx-b").map((b) => JSON.parse(b.toString("utf8")) as { task_guid: string; state: string; failure_reason: string });
    expect(listed.map((t) => [t.task_guid, t.state]).sort()).toEqual([
      ["idx-2", "PENDING"],
      ["idx-3", "COMPLETED"],
    ]);
    expect(listed.find((t) => t.task_guid === "idx-3")?.failure_reason).toBe("task was cancelled");
    expect(listJson(index, "no-such-domain")).toEqual([]);
    expect(index.get("idx-3")!.record.task!.failed).toBe(true);
  });

  it("encodes JSON ahead of the first list once writes pause, when asked to (the receptor)", async () => {
    const warm = await createTaskIndex(views.reader.kv, undefined, { warm: [taskJsonView] });
    const cold = await createTaskIndex(views.reader.kv);
    try {
      await Promise.all([warm.ready(), cold.ready()]);
      await Promise.all(Array.from({ length: 30 }, (_, i) => writer.create(request(`warm-${i}`, "idx-warm"))));
      await vi.waitFor(() => expect(cold.list("idx-warm").length).toBe(30));
      await vi.waitFor(() => expect(warm.list("idx-warm").filter((t) => t.hasView(taskJsonView)).length).toBe(30), { timeout: 5000 });
      expect(cold.list("idx-warm").some((t) => t.hasView(taskJsonView))).toBe(false);
      const byGuid = (parts: Buffer[]) => parts.map((b) => JSON.parse(b.toString()) as { task_guid: string }).sort((x, y) => x.task_guid.localeCompare(y.task_guid));
      expect(byGuid(listJson(warm, "idx-warm"))).toEqual(byGuid(listJson(cold, "idx-warm")));
    } finally {
      await warm.stop();
      await cold.stop();
    }
  });

  it("lists a cell's tasks, and follows them from cell to cell", async () => {
    await writer.create(request("idx-cell-1", "idx-c"));
    await writer.create(request("idx-cell-2", "idx-c"));
    await writer.apply("idx-cell-1", transitions.claim("cell-a", "session-a"));
    await writer.apply("idx-cell-2", transitions.claim("cell-a", "session-a"));
    await seen("idx-cell-2", TaskState.CLAIMED);
    expect(index.listBy("cell", "cell-a").map((t) => t.guid).sort()).toEqual(["idx-cell-1", "idx-cell-2"]);
    await writer.apply("idx-cell-1", transitions.cancel);
    await seen("idx-cell-1", TaskState.COMPLETED);
    expect(index.listBy("cell", "cell-a").map((t) => t.guid)).toEqual(["idx-cell-2"]);
    expect(index.listBy("cell", "no-such-cell")).toEqual([]);
  });

  it("a view is made once per revision: a change makes it anew", async () => {
    await writer.create(request("idx-view", "idx-v"));
    await seen("idx-view", TaskState.PENDING);
    const before = index.get("idx-view")!;
    // Made once and kept in the index's arena: both reads are views of the same bytes.
    const [a, b] = [jsonBytes(before), jsonBytes(before)];
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset);
    await writer.apply("idx-view", transitions.cancel);
    await seen("idx-view", TaskState.COMPLETED);
    expect(JSON.parse(jsonBytes(index.get("idx-view")!).toString())).toMatchObject({ state: "COMPLETED", failed: true });
  });
});

describe("task store apply", () => {
  it("returns the record it changed and the record as written", async () => {
    const created = await writer.create(request("apply-1", "idx-apply"));
    const { before, after } = await writer.apply("apply-1", transitions.claim("cell-b", "session-b"));
    expect(before).toEqual(created);
    expect(after.revision).toBeGreaterThan(before.revision);
    expect([before.record.task!.state, after.record.task!.state]).toEqual([TaskState.PENDING, TaskState.CLAIMED]);
    expect(after.record.task!.cellId).toBe("cell-b");
    expect(await writer.get("apply-1")).toEqual(after);
  });

  it("returns one record as both when the transition changes nothing", async () => {
    await writer.create(request("apply-2", "idx-apply"));
    const noChange: Transition = (r) => r;
    const { before, after } = await writer.apply("apply-2", noChange);
    expect(after).toBe(before);
    expect(before.record.task!.state).toBe(TaskState.PENDING);
  });
});
