import { afterAll, beforeAll, expect, it } from "vitest";
import { transitions, type TaskIndex, type TaskStore } from "../../src/store/index.js";
import { taskRequest } from "../dispatcher/task-driver.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { openTwoViews, type TwoViews } from "../fixtures/two-views.js";
import { until } from "./fault-support.js";

// Found by the chaos run: with nats-server 2.9.10 a KV purge (a subject rollup) moved every
// watcher of the bucket past updates of other tasks, so the converger, dispatchers and
// receptors kept stale records for ever (tasks stuck RESOLVING, callbacks never retried).
// Removing a task must leave every other process's watch-fed view exact.

let nats: TestNats;
let views: TwoViews;
let store: TaskStore;
let index: TaskIndex;

beforeAll(async () => {
  nats = await startNats();
  // The writer, and another process's view: its own connection, and no writes of its own here.
  views = await openTwoViews(nats.url);
  ({ writer: store, index } = views);
});
afterAll(async () => {
  await views?.close();
  await nats?.dispose();
});

it("a watcher sees every change while other tasks are being removed", async () => {
  const guids = Array.from({ length: 300 }, (_, i) => `removal-${i}`);
  await Promise.all(guids.map((g) => store.create(taskRequest(g))));
  const removed = new Set(guids.filter((_, i) => i % 3 === 0));
  // Removals interleave with updates of the other tasks, as when callbacks resolve tasks while
  // cells claim others.
  await Promise.all(
    guids.map(async (g) => {
      const { after: claimed } = await store.apply(g, transitions.claim("cell-1", "session-1"));
      if (removed.has(g)) await store.remove(g, claimed.revision);
      else await store.apply(g, transitions.start("cell-1"));
    }),
  );
  const expected = await Promise.all(guids.map(async (g) => (await store.get(g))?.revision));
  const matches = (): boolean => guids.every((g, i) => index.get(g)?.revision === expected[i]);
  await until("the watcher to catch up", matches, 5_000).catch(() => undefined);
  const stale = guids.filter((g, i) => index.get(g)?.revision !== expected[i]);
  expect(stale).toEqual([]);
  for (const g of removed) expect(await store.get(g)).toBeUndefined();
});
