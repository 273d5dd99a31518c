import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import PQueue from "p-queue";
import pino, { type Logger } from "pino";

// The cell's download cache (Diego's cacheddownloader): archives fetched with a cache_key are
// kept on disk and revalidated with If-None-Match / If-Modified-Since, so a 304 reuses them.
// Without a cache_key, or when the server sends neither ETag nor Last-Modified, a download is
// used once and deleted. At most maxConcurrent HTTP transfers run at a time per cell.

export const DEFAULT_MAX_CONCURRENT_DOWNLOADS = 5;
const DEFAULT_MAX_BYTES = 10 * 1024 ** 3;

export interface DownloadRequest {
  url: string;
  /** Empty: not cached. */
  cacheKey: string;
  signal: AbortSignal;
}

export interface DownloadedFile {
  /** Host path; valid until the `use` callback settles. */
  path: string;
  size: number;
  /** True when the server answered 304 and the cached copy was used. */
  fromCache: boolean;
}

export interface DownloadCache {
  /** Downloads (or revalidates) url and hands the local file to use. */
  fetch<T>(req: DownloadRequest, use: (file: DownloadedFile) => Promise<T>): Promise<T>;
}

export interface DownloadCacheOptions {
  dir: string;
  maxConcurrent?: number;
  /** Cached archives beyond this total are evicted, least recently used first. */
  maxBytes?: number;
  logger?: Logger;
}

export class DownloadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DownloadError";
  }
}

interface EntryMeta {
  cacheKey: string;
  etag: string;
  lastModified: string;
  size: number;
}

export function createDownloadCache(opts: DownloadCacheOptions): DownloadCache {
  const entriesDir = path.join(opts.dir, "entries");
  const tmpDir = path.join(opts.dir, "tmp");
  const transfers = new PQueue({ concurrency: opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_DOWNLOADS });
  const locks = createKeyedLock();
  const logger = opts.logger ?? pino({ level: "silent" });
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let dirs: Promise<unknown> | undefined;
  const ensureDirs = (): Promise<unknown> =>
    (dirs ??= Promise.all([mkdir(entriesDir, { recursive: true }), mkdir(tmpDir, { recursive: true })]).catch((err) => {
      dirs = undefined;
      throw err;
    }));
  const entryPath = (hash: string, ext: "bin" | "json"): string => path.join(entriesDir, `${hash}.${ext}`);

  /** One GET into a temp file, holding a transfer slot only while bytes flow. */
  async function download(req: DownloadRequest, meta: EntryMeta | undefined): Promise<Transfer> {
    await ensureDirs();
    return transfers.add(
      async () => {
        const t = await transfer(req, meta, tmpDir);
        // Aborted, p-queue has already rejected for us: a transfer that finished anyway must not leave its file.
        if (req.signal.aborted && t.kind === "body") await rm(t.file, { force: true });
        return t;
      },
      { signal: req.signal },
    );
  }

  async function fetchUncached<T>(req: DownloadRequest, use: (f: DownloadedFile) => Promise<T>): Promise<T> {
    const t = await download(req, undefined);
    if (t.kind !== "body") throw new DownloadError("unexpected 304 Not Modified without a cached copy");
    try {
      return await use({ path: t.file, size: t.size, fromCache: false });
    } finally {
      await rm(t.file, { force: true });
    }
  }

  async function fetchCached<T>(req: DownloadRequest, use: (f: DownloadedFile) => Promise<T>): Promise<T> {
    const hash = createHash("sha256").update(req.cacheKey).digest("hex");
    return locks.run(hash, async () => {
      const meta = await readMeta(entryPath(hash, "json"));
      const t = await download(req, meta);
      if (t.kind === "not-modified") {
        if (!meta) throw new DownloadError("unexpected 304 Not Modified without a cached copy");
        logger.debug({ cacheKey: req.cacheKey }, "download cache hit (304)");
        const now = new Date();
        await utimes(entryPath(hash, "json"), now, now).catch(() => undefined);
        return use({ path: entryPath(hash, "bin"), size: meta.size, fromCache: true });
      }
      if (!t.etag && !t.lastModified) {
        // Not revalidatable: forget any older copy and use this one once.
        await Promise.all([rm(entryPath(hash, "json"), { force: true }), rm(entryPath(hash, "bin"), { force: true })]);
        try {
          return await use({ path: t.file, size: t.size, fromCache: false });
        } finally {
          await rm(t.file, { force: true });
        }
      }
      await rename(t.file, entryPath(hash, "bin"));
      const fresh: EntryMeta = { cacheKey: req.cacheKey, etag: t.etag, lastModified: t.lastModified, size: t.size };
      await writeFile(entryPath(hash, "json"), JSON.stringify(fresh));
      await evict(hash).catch((err: unknown) => logger.warn({ err }, "download cache eviction failed"));
      return use({ path: entryPath(hash, "bin"), size: t.size, fromCache: false });
    });
  }

  /** Drops least recently used entries (never one in use) until the total fits maxBytes. */
  async function evict(keep: string): Promise<void> {
    const metas = (await readdir(entriesDir)).filter((f) => f.endsWith(".json"));
    const entries = await Promise.all(
      metas.map(async (f) => {
        const hash = f.slice(0, -".json".length);
        const [st, meta] = await Promise.all([stat(entryPath(hash, "json")), readMeta(entryPath(hash, "json"))]);
        return { hash, used: st.mtimeMs, size: meta?.size ?? 0 };
      }),
    );
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= maxBytes) return;
      if (e.hash === keep || locks.held(e.hash)) continue;
      await Promise.all([rm(entryPath(e.hash, "json"), { force: true }), rm(entryPath(e.hash, "bin"), { force: true })]);
      total -= e.size;
    }
  }

  return {
    fetch: (req, use) => (req.cacheKey ? fetchCached(req, use) : fetchUncached(req, use)),
  };
}

type Transfer =
  | { kind: "not-modified" }
  | { kind: "body"; file: string; size: number; etag: string; lastModified: string };

async function transfer(req: DownloadRequest, meta: EntryMeta | undefined, tmpDir: string): Promise<Transfer> {
  const url = parseHttpUrl(req.url);
  const headers: Record<string, string> = {};
  if (meta?.etag) headers["If-None-Match"] = meta.etag;
  if (meta?.lastModified) headers["If-Modified-Since"] = meta.lastModified;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: req.signal, redirect: "follow" });
  } catch (err) {
    throw new DownloadError(`request failed: ${(err as Error).message}`, { cause: err });
  }
  if (res.status === 304 && meta) {
    await res.body?.cancel();
    return { kind: "not-modified" };
  }
  if (res.status < 200 || res.status >= 300 || !res.body) {
    await res.body?.cancel();
    throw new DownloadError(`unexpected status ${res.status}`);
  }
  const file = path.join(tmpDir, `dl-${randomBytes(8).toString("hex")}`);
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(file, { mode: 0o600 }), {
      signal: req.signal,
    });
    const { size } = await stat(file);
    return {
      kind: "body",
      file,
      size,
      etag: res.headers.get("etag") ?? "",
      lastModified: res.headers.get("last-modified") ?? "",
    };
  } catch (err) {
    await rm(file, { force: true });
    throw new DownloadError(`transfer failed: ${(err as Error).message}`, { cause: err });
  }
}

interface KeyedLock {
  /** Runs fn for one key at a time; other keys are not held up. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** True while fn of that key runs or waits. */
  held(key: string): boolean;
}

/** One single-lane p-queue per key, dropped when it goes idle. */
function createKeyedLock(): KeyedLock {
  const lanes = new Map<string, PQueue>();
  return {
    run(key, fn) {
      let lane = lanes.get(key);
      if (!lane) {
        const created = new PQueue({ concurrency: 1 });
        created.on("idle", () => {
          if (lanes.get(key) === created) lanes.delete(key);
        });
        lanes.set(key, (lane = created));
      }
      return lane.add(fn);
    },
    held: (key) => lanes.has(key),
  };
}

function parseHttpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DownloadError("invalid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new DownloadError(`unsupported scheme ${url.protocol}`);
  return url;
}

async function readMeta(file: string): Promise<EntryMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(file, "utf8")) as EntryMeta;
    await stat(file.replace(/\.json$/, ".bin"));
    return meta;
  } catch {
    return undefined;
  }
}
