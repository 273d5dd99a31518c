import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDownloadCache, DownloadError } from "../../cell-agent/src/executor/index.js";
import { startHttpServer, type TestHttpServer } from "./harness.js";

let server: TestHttpServer;
let dir: string;
const held: ServerResponse[] = [];
/** Every path the server was asked for. */
const asked: string[] = [];
let onHeld: (() => void) | undefined;
let version = "one";

beforeAll(async () => {
  server = await startHttpServer((req, _body, res) => {
    asked.push(req.url ?? "");
    if (req.url?.startsWith("/slow/")) {
      held.push(res);
      onHeld?.();
      return;
    }
    if (req.url === "/versioned") {
      const etag = `"${version}"`;
      if (req.headers["if-none-match"] === etag) return res.writeHead(304).end();
      return res.writeHead(200, { ETag: etag }).end(`content ${version}`);
    }
    if (req.url === "/plain") return res.end("no validators");
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  await server?.close();
});
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const newCache = async (opts: { maxBytes?: number } = {}): Promise<ReturnType<typeof createDownloadCache>> => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dl-cache-"));
  return createDownloadCache({ dir, ...opts });
};
const signal = new AbortController().signal;
const read = (cache: ReturnType<typeof createDownloadCache>, url: string, cacheKey: string) =>
  cache.fetch({ url: `${server.url}${url}`, cacheKey, signal }, async (f) => ({ text: await readFile(f.path, "utf8"), fromCache: f.fromCache }));

describe("download cache", () => {
  it("runs at most 5 HTTP downloads at once per cell", async () => {
    const cache = await newCache();
    const five = new Promise<void>((resolve) => (onHeld = () => held.length === 5 && resolve()));
    const all = Array.from({ length: 7 }, (_, i) => read(cache, `/slow/${i}`, ""));
    await five;
    // Nothing can signal "a 6th request did not come"; give it a moment to show up if it would.
    await new Promise((r) => setTimeout(r, 200));
    expect(held).toHaveLength(5);
    onHeld = () => held.at(-1)!.end("late");
    for (const res of held.splice(0)) res.end("done");
    const results = await Promise.all(all);
    expect(results.map((r) => r.text).sort()).toEqual(["done", "done", "done", "done", "done", "late", "late"]);
  });

  it("gives up a download still waiting for a slot at once when its task is cancelled; it never starts", async () => {
    const cache = await newCache();
    held.length = 0; // answered already, by the test before
    const five = new Promise<void>((resolve) => (onHeld = () => held.length === 5 && resolve()));
    const busy = Array.from({ length: 5 }, (_, i) => read(cache, `/slow/busy-${i}`, ""));
    await five;
    const cancel = new AbortController();
    const waiting = cache.fetch({ url: `${server.url}/slow/waiting`, cacheKey: "", signal: cancel.signal }, async () => "used");
    cancel.abort(new Error("task was cancelled"));
    await expect(waiting).rejects.toThrow("task was cancelled");
    onHeld = undefined;
    for (const res of held.splice(0)) res.end("done");
    await Promise.all(busy);
    // The next download gets the freed slot; the cancelled one was never sent.
    await expect(read(cache, "/plain", "")).resolves.toEqual({ text: "no validators", fromCache: false });
    expect(asked).not.toContain("/slow/waiting");
  });

  it("re-downloads when the ETag changed and reuses the copy on 304", async () => {
    const cache = await newCache();
    version = "one";
    expect(await read(cache, "/versioned", "k")).toEqual({ text: "content one", fromCache: false });
    expect(await read(cache, "/versioned", "k")).toEqual({ text: "content one", fromCache: true });
    version = "two";
    expect(await read(cache, "/versioned", "k")).toEqual({ text: "content two", fromCache: false });
    expect(await read(cache, "/versioned", "k")).toEqual({ text: "content two", fromCache: true });
  });

  it("does not cache a response without ETag or Last-Modified", async () => {
    const cache = await newCache();
    const before = server.requests.length;
    expect(await read(cache, "/plain", "k")).toEqual({ text: "no validators", fromCache: false });
    expect(await read(cache, "/plain", "k")).toEqual({ text: "no validators", fromCache: false });
    const sent = server.requests.slice(before);
    expect(sent.map((r) => r.headers["if-none-match"] ?? r.headers["if-modified-since"])).toEqual([undefined, undefined]);
  });

  it("evicts the least recently used entry beyond maxBytes", async () => {
    const cache = await newCache({ maxBytes: 15 });
    version = "one";
    await read(cache, "/versioned", "a"); // 11 bytes
    await read(cache, "/versioned", "b"); // 11 more: "a" goes
    expect((await read(cache, "/versioned", "b")).fromCache).toBe(true);
    expect((await read(cache, "/versioned", "a")).fromCache).toBe(false);
  });

  it("rejects with a DownloadError on an HTTP error status or a bad URL", async () => {
    const cache = await newCache();
    await expect(read(cache, "/missing", "")).rejects.toBeInstanceOf(DownloadError);
    await expect(cache.fetch({ url: "ftp://x/y", cacheKey: "", signal }, async () => 1)).rejects.toBeInstanceOf(DownloadError);
  });
});
