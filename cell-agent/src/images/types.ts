import type { Logger } from "pino";

export interface PulledImage {
  /** Digest of what the reference resolved to (the index for a multi-platform image), as `docker pull` prints. */
  digest: string;
  /** Unpacked layer directories, lowest first, ready to be overlay lowerdirs (reverse them for lowerdir=). */
  layers: string[];
  /** "K=V" from the image config's Env. */
  env: string[];
  /** The image's WorkingDir, "/" when unset. */
  workingDir: string;
  /** The image's User, "" (root) when unset. */
  user: string;
  /** false when everything came from the cache (no blob was downloaded). */
  pulled: boolean;
}

export interface ImageStoreOptions {
  /** Owned by this store alone: one store per directory. */
  cacheDir: string;
  /** Registry for `docker:///org/image`, "host[:port]". */
  defaultRegistry: string;
  /** Registries reached over plain http ("host:port" or "host"); localhost/127.0.0.1/[::1] always are. */
  insecureRegistries?: string[];
  logger?: Logger;
  fetch?: typeof fetch;
  /** Deadline for a manifest or token request, headers and body. Default 15 s. */
  manifestTimeoutMs?: number;
  /** A blob download fails when no bytes arrive for this long. Default 60 s. */
  blobIdleTimeoutMs?: number;
  /** Layers downloaded and unpacked at once per image. Default 3. */
  maxConcurrentLayers?: number;
}

export interface ImageStore {
  /**
   * Pulls `docker://[host[:port]]/repo[#tag|#sha256:...]` (linux/amd64) into the cache and returns its
   * layers and config. Tags are re-resolved each time; if the registry is unreachable, a tag pulled
   * before is served from the cache. Concurrent pulls of one image or layer share one download.
   * Fails with ImagePullError only.
   */
  pull(rootfsUrl: string, signal?: AbortSignal): Promise<PulledImage>;
}
