import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, openTasksBucket } from "../../src/nats/index.js";
import { createKvClient, createTaskStore, KvConflictError, KvRequestError, transitions, type KvClient } from "../../src/store/index.js";
import { decodeTaskCreateRequest } from "../../src/model/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// The store's reads and writes bypass nats.js's KV methods (see kv-client.ts), so these check
// that both sides see the same entries, and that every compare-and-swap still holds.

let nats: TestNats;
let nc: NatsConnection;
let kv: KV;
let writer: KvClient;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

beforeAll(async () => {
  nats = await startNats();
  nc = await connectNats({ url: nats.url, name: "kv-writer-test" });
  kv = await new Kvm(jetstream(nc)).create("writer_test", { history: 1, storage: "file" });
  writer = createKvClient(nc, "writer_test");
});

afterAll(async () => {
  writer?.close();
  await nc?.drain().catch(() => undefined);
  await nats?.dispose();
});

describe("KV client", () => {
  it("creates a key only once, and updates only from the revision it names", async () => {
    const first = await writer.put("k1", bytes("one"), 0);
    expect((await kv.get("k1"))?.string()).toBe("one");
    await expect(writer.put("k1", bytes("again"), 0)).rejects.toBeInstanceOf(KvConflictError);
    const second = await writer.put("k1", bytes("two"), first);
    expect(second).toBeGreaterThan(first);
    await expect(writer.put("k1", bytes("stale"), first)).rejects.toThrow(/wrong last sequence/);
    const e = await kv.get("k1");
    expect([e?.string(), e?.revision]).toEqual(["two", second]);
  });

  it("writes delete markers that nats.js reads as deletions", async () => {
    const rev = await writer.put("k2", bytes("x"), 0);
    await expect(writer.delete("k2", rev + 100)).rejects.toBeInstanceOf(KvConflictError);
    const marker = await writer.delete("k2", rev);
    const e = await kv.get("k2");
    expect([e?.operation, e?.revision]).toEqual(["DEL", marker]);
  });

  it("acknowledges each of many concurrent writes with its own revision", async () => {
    const revs = await Promise.all(Array.from({ length: 500 }, (_, i) => writer.put(`many-${i}`, bytes(String(i)), 0)));
    expect(new Set(revs).size).toBe(500);
    const e = await kv.get("many-321");
    expect([e?.string(), e?.revision]).toEqual(["321", revs[321]]);
  });

  it("reads what nats.js wrote: values, revisions, delete markers, and nothing for unknown keys", async () => {
    const rev = await kv.put("read-1", bytes("hello"));
    const e = await writer.get("read-1");
    expect([e?.operation, Buffer.from(e!.value).toString(), e?.revision]).toEqual(["PUT", "hello", rev]);
    await kv.delete("read-1");
    expect((await writer.get("read-1"))?.operation).toBe("DEL");
    expect(await writer.get("never-written")).toBeUndefined();
    // Concurrent reads in one batch each get their own answer.
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`read-many-${i}`, bytes(`v${i}`))));
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => writer.get(`read-many-${i}`)));
    expect(values.map((v) => Buffer.from(v!.value).toString())).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
  });

  it("names the problem when the bucket does not exist", async () => {
    const lost = createKvClient(nc, "no_such_bucket", { timeoutMs: 300 });
    try {
      await expect(lost.put("k", bytes("v"), 0)).rejects.toThrow(/no stream for the bucket/);
      // The JetStream API answers nothing for a direct get on a missing stream.
      await expect(lost.get("k")).rejects.toThrow(/no reply from JetStream within 300 ms/);
    } finally {
      lost.close();
    }
  });

  it("fails soon while disconnected, rather than waiting on requests nats.js would drop", async () => {
    const own = await startNats();
    const conn = await connectNats({ url: own.url, name: "kv-writer-timeout" });
    await openTasksBucket(conn);
    const w = createKvClient(conn, "diego_tasks", { timeoutMs: 300 });
    try {
      await own.stop();
      await expect(w.put("k", bytes("v"), 0)).rejects.toBeInstanceOf(KvRequestError);
      const began = Date.now();
      await expect(w.put("k", bytes("v"), 0)).rejects.toThrow(/NATS disconnected|no reply from JetStream within 300 ms/);
      expect(Date.now() - began).toBeLessThan(1_000);
    } finally {
      w.close();
      await conn.close();
      await own.dispose();
    }
  });
});

describe("task store", () => {
  it("lets a deleted task's guid be created again, but not a live one's", async () => {
    await openTasksBucket(nc);
    const store = createTaskStore(nc);
    const req = decodeTaskCreateRequest({ task_guid: "reused", domain: "d", stack: "s", action: { run: { path: "/bin/true" } } });
    await store.create(req);
    await expect(store.create(req)).rejects.toThrow(/already exists/);
    await store.apply("reused", transitions.cancel);
    await store.resolve("reused");
    expect(await store.get("reused")).toBeUndefined();
    const again = await store.create(req);
    expect((await store.get("reused"))?.revision).toBe(again.revision);
    await expect(store.create(req)).rejects.toThrow(/already exists/);
  });

  it("switches a tasks bucket made without direct gets over to them, so reads work", async () => {
    const own = await startNats();
    const conn = await connectNats({ url: own.url, name: "kv-direct-test" });
    try {
      await new Kvm(jetstream(conn)).create("diego_tasks", { history: 1, storage: "file", allow_direct: false });
      await openTasksBucket(conn);
      const store = createTaskStore(conn);
      const req = decodeTaskCreateRequest({ task_guid: "direct", domain: "d", stack: "s", action: { run: { path: "/bin/true" } } });
      await store.create(req);
      expect((await store.get("direct"))?.record.task?.taskGuid).toBe("direct");
    } finally {
      await conn.close();
      await own.dispose();
    }
  });
});
