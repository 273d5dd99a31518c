import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidStateTransitionError, transitions } from "../../src/store/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestReceptor } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid, type ErrorBody, type RestClient, type RestReply } from "./rest-client.js";
import { connectStore, type StoreClient } from "./store-client.js";

// Every transition is a compare-and-swap on the stored record: however many writers race, one
// wins and the others see the state it left. Two receptors share one nats-server here, as N
// stateless receptors behind a load balancer would.

const RACERS = 50;

let nats: TestNats;
let receptors: Array<Awaited<ReturnType<typeof startTestReceptor>>> = [];
let apis: RestClient[];
let cell: StoreClient;

beforeAll(async () => {
  nats = await startNats();
  receptors = await Promise.all([startTestReceptor(nats.url), startTestReceptor(nats.url)]);
  apis = receptors.map((r) => createRestClient(r.url));
  cell = await connectStore(nats.url, "concurrency-cell");
});

afterAll(async () => {
  await cell?.close();
  await Promise.all(receptors.map((r) => r.stop()));
  await nats?.dispose();
});

const task = (guid: string): Record<string, unknown> => ({
  task_guid: guid,
  domain: "race",
  stack: "lucid64",
  action: { run: { path: "/bin/true" } },
});

async function created(guid: string): Promise<void> {
  expect((await apis[0]!.createTask(task(guid))).status).toBe(201);
}

/** Status -> how many replies had it, plus the error names seen. */
function tally(replies: RestReply[]): { statuses: Record<number, number>; names: string[] } {
  const statuses: Record<number, number> = {};
  const names = new Set<string>();
  for (const r of replies) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status >= 400) names.add(r.json<ErrorBody>().name);
  }
  return { statuses, names: [...names].sort() };
}

describe("racing API calls on one task", () => {
  it(`${RACERS} cancels through one receptor: exactly one 200, the rest 409 TaskNotCancelable`, async () => {
    const guid = uniqueGuid("cancel-race");
    await created(guid);
    const replies = await Promise.all(Array.from({ length: RACERS }, () => apis[0]!.cancelTask(guid)));
    expect(tally(replies)).toEqual({ statuses: { 200: 1, 409: RACERS - 1 }, names: ["TaskNotCancelable"] });
    const t = (await apis[0]!.getTask(guid)).json<Record<string, unknown>>();
    expect(t).toMatchObject({ state: "COMPLETED", failed: true, failure_reason: "task was cancelled" });
  });

  it(`${RACERS} cancels spread over two receptors: still exactly one 200`, async () => {
    const guid = uniqueGuid("cancel-race-2");
    await created(guid);
    const replies = await Promise.all(Array.from({ length: RACERS }, (_, i) => apis[i % 2]!.cancelTask(guid)));
    expect(tally(replies)).toEqual({ statuses: { 200: 1, 409: RACERS - 1 }, names: ["TaskNotCancelable"] });
  });

  it(`${RACERS} creates of one guid: exactly one 201, the rest 409 TaskGuidAlreadyExists`, async () => {
    const guid = uniqueGuid("create-race");
    const replies = await Promise.all(
      Array.from({ length: RACERS }, (_, i) => apis[i % 2]!.createTask({ ...task(guid), annotation: `racer ${i}` })),
    );
    expect(tally(replies)).toEqual({ statuses: { 201: 1, 409: RACERS - 1 }, names: ["TaskGuidAlreadyExists"] });
    // The stored task is the winner's, whole: one racer's annotation.
    const winner = replies.findIndex((r) => r.status === 201);
    const t = (await apis[0]!.getTask(guid)).json<Record<string, unknown>>();
    expect(t.annotation).toBe(`racer ${winner}`);
  });

  it(`${RACERS} DELETEs of a completed task: exactly one 200, then it is gone`, async () => {
    const guid = uniqueGuid("delete-race");
    await created(guid);
    await cell.finish(guid, "cell-delete-race", { failed: false, failureReason: "", result: "ok" });
    const replies = await Promise.all(Array.from({ length: RACERS }, (_, i) => apis[i % 2]!.deleteTask(guid)));
    const { statuses, names } = tally(replies);
    expect(statuses[200]).toBe(1);
    // The losers saw it RESOLVING (409) or already removed (404); never a server error.
    expect((statuses[404] ?? 0) + (statuses[409] ?? 0)).toBe(RACERS - 1);
    expect(names.every((n) => n === "TaskNotFound" || n === "TaskNotDeletable")).toBe(true);
    for (const api of apis) expect((await api.getTask(guid)).status).toBe(404);
  });
});

describe("racing cells", () => {
  it(`${RACERS} cells claiming one task over their own NATS connections: one winner, whose cell_id is stored`, async () => {
    const guid = uniqueGuid("claim-race");
    await created(guid);
    const cells = await Promise.all(Array.from({ length: RACERS }, (_, i) => connectStore(nats.url, `racing-cell-${i}`)));
    try {
      const results = await Promise.allSettled(
        cells.map((c, i) => c.store.apply(guid, transitions.claim(`cell-${i}`, `session-${i}`))),
      );
      const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      for (const r of results) {
        if (r.status === "rejected") {
          expect(r.reason).toBeInstanceOf(InvalidStateTransitionError);
          expect((r.reason as Error).message).toBe("Cannot transition from CLAIMED to CLAIMED");
        }
      }
      const stored = await cell.store.get(guid);
      expect(stored?.record.task).toMatchObject({ cellId: `cell-${winner}` });
      expect(stored?.record.cellSessionId).toBe(`session-${winner}`);
      const viaApi = (await apis[1]!.getTask(guid)).json<Record<string, unknown>>();
      expect(viaApi).toMatchObject({ state: "CLAIMED", cell_id: `cell-${winner}` });

      // Only the winner may start it.
      const starts = await Promise.allSettled(cells.map((c, i) => c.store.apply(guid, transitions.start(`cell-${i}`))));
      expect(starts.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []))).toEqual([winner]);
    } finally {
      await Promise.all(cells.map((c) => c.close()));
    }
  });

  it("a cancel racing the cell's completion: exactly one of them takes effect", async () => {
    for (let round = 0; round < 20; round++) {
      const guid = uniqueGuid("cancel-vs-complete");
      await created(guid);
      await cell.run(guid, "cell-racer");
      const [cancel, complete] = await Promise.allSettled([
        apis[round % 2]!.cancelTask(guid),
        cell.store.apply(guid, transitions.complete("cell-racer", { failed: false, failureReason: "", result: "done" })),
      ]);
      const t = (await apis[0]!.getTask(guid)).json<Record<string, unknown>>();
      const cancelled = cancel.status === "fulfilled" && cancel.value.status === 200;
      expect(cancelled).toBe(complete.status === "rejected");
      if (cancelled) {
        expect(t).toMatchObject({ state: "COMPLETED", failed: true, failure_reason: "task was cancelled", result: "" });
      } else {
        expect(cancel.status === "fulfilled" && cancel.value.status).toBe(409);
        expect(t).toMatchObject({ state: "COMPLETED", failed: false, result: "done" });
      }
    }
  });
});
