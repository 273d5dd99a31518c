import { chmod } from "node:fs/promises";
import PQueue from "p-queue";
import { pino, type Logger } from "pino";
import { createCacheLayout, type ImageRecord } from "./cache-layout.js";
import { ImagePullError } from "./errors.js";
import { parseImageConfig } from "./image-config.js";
import { extractLayer } from "./layer-extractor.js";
import { parseManifest, selectPlatform, type Descriptor } from "./manifest.js";
import { formatImageRef, isDigest, parseDockerRootfs } from "./parse-docker-rootfs.js";
import { createRegistryClient, type FetchedManifest, type RegistryClient } from "./registry-client.js";
import { createSingleFlight } from "./single-flight.js";
import type { ImageStore, ImageStoreOptions, PulledImage } from "./types.js";
import { convertWhiteouts } from "./whiteouts.js";

const DEFAULTS = { manifestTimeoutMs: 15_000, blobIdleTimeoutMs: 60_000, maxConcurrentLayers: 3 };

/** One image to pull: where from, and how to name it in messages and cache keys. */
interface Target {
  client: RegistryClient;
  repository: string;
  reference: string;
  label: string;
}

export function createImageStore(opts: ImageStoreOptions): ImageStore {
  const settings = { ...DEFAULTS, ...definedOnly(opts) };
  const logger: Logger = opts.logger ?? pino({ level: "silent" });
  const cache = createCacheLayout(opts.cacheDir);
  const clients = new Map<string, RegistryClient>();
  const images = createSingleFlight<PulledImage>();
  const layers = createSingleFlight<void>();
  let prepared: Promise<void> | undefined;

  function ready(): Promise<void> {
    prepared ??= cache.prepare().catch((err: unknown) => {
      prepared = undefined;
      throw err;
    });
    return prepared;
  }

  function clientFor(host: string): RegistryClient {
    let client = clients.get(host);
    if (!client) {
      client = createRegistryClient({
        host,
        insecure: isInsecure(host, opts.insecureRegistries ?? []),
        manifestTimeoutMs: settings.manifestTimeoutMs,
        blobIdleTimeoutMs: settings.blobIdleTimeoutMs,
        fetch: opts.fetch ?? globalThis.fetch,
        logger,
      });
      clients.set(host, client);
    }
    return client;
  }

  async function pullImage(target: Target, signal: AbortSignal): Promise<PulledImage> {
    const started = performance.now();
    await ready();
    const result = await resolveAndFetch(target, signal);
    logger.info(
      { image: target.label, digest: result.digest, pulled: result.pulled, ms: elapsed(started) },
      result.pulled ? "image pulled" : "image served from cache",
    );
    return result;
  }

  async function resolveAndFetch(target: Target, signal: AbortSignal): Promise<PulledImage> {
    // A digest names immutable content: when it is cached, the registry is not asked at all.
    if (isDigest(target.reference)) {
      const cached = await cache.readImage(target.reference);
      if (cached) return complete(target, cached, signal);
    }
    let top: FetchedManifest;
    try {
      top = await target.client.getManifest(target.repository, target.reference, target.label, signal);
    } catch (err) {
      const offline = await offlineRecord(target, err);
      if (!offline) throw err;
      logger.warn({ image: target.label, err: (err as Error).message }, "registry unreachable, using the cached tag");
      return complete(target, offline, signal);
    }
    const cached = await cache.readImage(top.digest);
    const record = cached ?? (await fetchRecord(target, top, signal));
    const result = await complete(target, record, signal, cached !== undefined);
    if (!isDigest(target.reference) && (await cache.readTag(target.label)) !== top.digest) {
      await cache.writeTag(target.label, top.digest);
    }
    return result;
  }

  /** A tag pulled before, when the registry cannot be reached: the cached manifest is good enough. */
  async function offlineRecord(target: Target, err: unknown): Promise<ImageRecord | undefined> {
    const unreachable = err instanceof ImagePullError && (err.kind === "unreachable" || err.kind === "timeout");
    if (!unreachable || isDigest(target.reference)) return undefined;
    const digest = await cache.readTag(target.label);
    const record = digest ? await cache.readImage(digest) : undefined;
    if (!record) return undefined;
    const missing = await missingLayers(record.layers);
    return missing.length === 0 ? record : undefined;
  }

  async function fetchRecord(target: Target, top: FetchedManifest, signal: AbortSignal): Promise<ImageRecord> {
    let manifest = parseManifest(top.body, top.contentType, target.label);
    if (manifest.kind === "index") {
      const chosen = selectPlatform(manifest.manifests, target.label);
      const child = await target.client.getManifest(target.repository, chosen.digest, target.label, signal);
      manifest = parseManifest(child.body, child.contentType, target.label);
      if (manifest.kind === "index") {
        throw new ImagePullError("unsupported", `unsupported manifest for ${target.label}: nested index`);
      }
    }
    const configBytes = await target.client.getBlob(target.repository, manifest.config, signal);
    const config = parseImageConfig(configBytes, manifest.config.digest);
    return { digest: top.digest, layers: manifest.layers, config };
  }

  /** Makes sure every layer of `record` is unpacked, then records the image as complete. */
  async function complete(
    target: Target,
    record: ImageRecord,
    signal: AbortSignal,
    fromCache = true,
  ): Promise<PulledImage> {
    const missing = await missingLayers(record.layers);
    await ensureLayers(target, missing, signal);
    if (!fromCache) await cache.writeImage(record);
    return {
      digest: record.digest,
      layers: record.layers.map((layer) => cache.layerDir(layer.digest)),
      env: record.config.env,
      workingDir: record.config.workingDir,
      user: record.config.user,
      pulled: !fromCache || missing.length > 0,
    };
  }

  async function missingLayers(descriptors: Descriptor[]): Promise<Descriptor[]> {
    const unique = [...new Map(descriptors.map((d) => [d.digest, d])).values()];
    const present = await Promise.all(unique.map((d) => cache.hasLayer(d.digest)));
    return unique.filter((_, i) => !present[i]);
  }

  /** Downloads layers a few at a time; the first failure stops the rest. */
  async function ensureLayers(target: Target, missing: Descriptor[], signal: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const combined = AbortSignal.any([signal, stop.signal]);
    const pool = new PQueue({ concurrency: settings.maxConcurrentLayers });
    const failFast = (err: unknown): never => {
      stop.abort(err); // drops the queued layers and aborts the ones in flight
      throw err;
    };
    const fetchOne = (layer: Descriptor): Promise<void> =>
      pool.add(() => layers.run(layer.digest, (s) => fetchLayer(target, layer, s), combined), { signal: stop.signal }).catch(failFast);
    try {
      await Promise.all(missing.map(fetchOne));
    } catch (err) {
      throw stop.signal.reason ?? err;
    }
  }

  async function fetchLayer(target: Target, layer: Descriptor, signal: AbortSignal): Promise<void> {
    if (await cache.hasLayer(layer.digest)) return;
    const temp = await cache.makeTemp(layer.digest.slice(7, 19));
    try {
      // mkdtemp makes 0700; a layer root without a "./" entry must still be readable as "/".
      await chmod(temp, 0o755);
      const started = performance.now();
      await extractLayer(target.client.streamBlob(target.repository, layer, signal), temp, layer.digest);
      await convertWhiteouts(temp, layer.digest);
      await cache.commitLayer(temp, layer.digest);
      logger.debug({ digest: layer.digest, bytes: layer.size, ms: elapsed(started) }, "layer unpacked");
    } catch (err) {
      await cache.removeTemp(temp);
      throw err;
    }
  }

  return {
    async pull(rootfsUrl, signal) {
      const ref = parseDockerRootfs(rootfsUrl);
      const host = ref.registry ?? opts.defaultRegistry;
      const label = formatImageRef(host, ref.repository, ref.reference);
      const target: Target = { client: clientFor(host), repository: ref.repository, reference: ref.reference, label };
      try {
        return await images.run(label, (s) => pullImage(target, s), signal);
      } catch (err) {
        throw asPullError(err, label, signal);
      }
    },
  };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

function asPullError(err: unknown, label: string, signal?: AbortSignal): ImagePullError {
  if (signal?.aborted) return new ImagePullError("aborted", `image pull aborted: ${label}`, { cause: err });
  if (err instanceof ImagePullError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new ImagePullError("cache-error", `image pull failed: ${label}: ${detail}`, { cause: err });
}

function isInsecure(host: string, listed: string[]): boolean {
  const hostname = host.replace(/:\d+$/, "");
  if (hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname)) return true;
  return listed.includes(host) || listed.includes(hostname);
}

function definedOnly(opts: ImageStoreOptions): Partial<typeof DEFAULTS> {
  const out: Partial<typeof DEFAULTS> = {};
  if (opts.manifestTimeoutMs !== undefined) out.manifestTimeoutMs = opts.manifestTimeoutMs;
  if (opts.blobIdleTimeoutMs !== undefined) out.blobIdleTimeoutMs = opts.blobIdleTimeoutMs;
  if (opts.maxConcurrentLayers !== undefined) out.maxConcurrentLayers = opts.maxConcurrentLayers;
  return out;
}
