import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImageConfig } from "./image-config.js";
import type { Descriptor } from "./manifest.js";

/** What a finished pull leaves behind, keyed by the digest the reference resolved to. */
export interface ImageRecord {
  digest: string;
  layers: Descriptor[];
  config: ImageConfig;
}

/**
 * On-disk cache: layers/<hex>/ (unpacked layers), images/<hex>.json, tags/<hash of ref>.json and tmp/.
 * Everything appears by rename from tmp/, so whatever is outside tmp/ is complete; tmp/ is swept on start.
 */
export interface CacheLayout {
  prepare(): Promise<void>;
  layerDir(digest: string): string;
  hasLayer(digest: string): Promise<boolean>;
  /** A fresh directory on the cache's filesystem (so rename into place is atomic). */
  makeTemp(label: string): Promise<string>;
  /** Renames a finished temp dir into place; false when another pull put it there first. */
  commitLayer(tempDir: string, digest: string): Promise<boolean>;
  removeTemp(tempDir: string): Promise<void>;
  readImage(digest: string): Promise<ImageRecord | undefined>;
  writeImage(record: ImageRecord): Promise<void>;
  readTag(ref: string): Promise<string | undefined>;
  writeTag(ref: string, digest: string): Promise<void>;
}

export function createCacheLayout(cacheDir: string): CacheLayout {
  const dirs = {
    layers: join(cacheDir, "layers"),
    images: join(cacheDir, "images"),
    tags: join(cacheDir, "tags"),
    tmp: join(cacheDir, "tmp"),
  };
  const hex = (digest: string) => digest.slice("sha256:".length);
  const layerDir = (digest: string) => join(dirs.layers, hex(digest));
  const imagePath = (digest: string) => join(dirs.images, `${hex(digest)}.json`);
  const tagPath = (ref: string) => join(dirs.tags, `${createHash("sha256").update(ref).digest("hex")}.json`);

  async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
    const temp = join(dirs.tmp, `${randomBytes(8).toString("hex")}.json`);
    await writeFile(temp, JSON.stringify(value));
    await rename(temp, path);
  }

  return {
    async prepare() {
      // Leftovers of a crash mid-pull: half-extracted layers never left tmp/, so drop them.
      await rm(dirs.tmp, { recursive: true, force: true });
      await Promise.all(Object.values(dirs).map((dir) => mkdir(dir, { recursive: true })));
    },
    layerDir,
    async hasLayer(digest) {
      return (await stat(layerDir(digest)).catch(() => undefined))?.isDirectory() ?? false;
    },
    makeTemp: (label) => mkdtemp(join(dirs.tmp, `${label}-`)),
    async commitLayer(tempDir, digest) {
      try {
        await rename(tempDir, layerDir(digest));
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        await rm(tempDir, { recursive: true, force: true });
        return false;
      }
    },
    removeTemp: (tempDir) => rm(tempDir, { recursive: true, force: true }),
    async readImage(digest) {
      return readJson<ImageRecord>(imagePath(digest));
    },
    writeImage: (record) => writeJsonAtomic(imagePath(record.digest), record),
    async readTag(ref) {
      return (await readJson<{ ref: string; digest: string }>(tagPath(ref)))?.digest;
    },
    writeTag: (ref, digest) => writeJsonAtomic(tagPath(ref), { ref, digest }),
  };
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}
