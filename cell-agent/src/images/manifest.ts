import { ImagePullError } from "./errors.js";
import { INDEX_TYPES, MANIFEST_TYPES } from "./media-types.js";
import { isDigest } from "./parse-docker-rootfs.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  /** Always "sha256:<64 hex>": checked here, so it is safe to use in cache paths. */
  digest: string;
  size: number;
  platform?: Platform;
}

export type ParsedManifest =
  | { kind: "index"; manifests: Descriptor[] }
  | { kind: "image"; config: Descriptor; layers: Descriptor[] };

export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

type Json = Record<string, unknown>;

/** Parses an image manifest or an index/manifest list; `label` names it in errors. */
export function parseManifest(body: Buffer, contentType: string | null, label: string): ParsedManifest {
  const bad = (why: string) => new ImagePullError("bad-manifest", `bad manifest for ${label}: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    throw bad("not JSON");
  }
  if (!isObject(doc)) throw bad("not a JSON object");
  if (doc.schemaVersion === 1) {
    throw new ImagePullError("unsupported", `unsupported manifest for ${label}: Docker schema 1 is not supported`);
  }
  // The body's own mediaType wins; OCI lets it be omitted, then the header and shape decide.
  const mediaType = typeof doc.mediaType === "string" ? doc.mediaType : baseType(contentType);
  if (INDEX_TYPES.has(mediaType) || (!MANIFEST_TYPES.has(mediaType) && Array.isArray(doc.manifests))) {
    return { kind: "index", manifests: descriptors(doc.manifests, "manifests", bad) };
  }
  if (MANIFEST_TYPES.has(mediaType) || Array.isArray(doc.layers)) {
    return {
      kind: "image",
      config: descriptor(doc.config, "config", bad),
      layers: descriptors(doc.layers, "layers", bad),
    };
  }
  throw new ImagePullError("unsupported", `unsupported manifest media type "${mediaType}" for ${label}`);
}

/** Picks the entry for `platform` from an index (linux/amd64 by default). */
export function selectPlatform(manifests: Descriptor[], label: string, platform = DEFAULT_PLATFORM): Descriptor {
  const match = manifests.find(
    (m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture,
  );
  if (match) return match;
  const offered = manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : "unknown"));
  throw new ImagePullError(
    "no-matching-platform",
    `no ${platform.os}/${platform.architecture} image in ${label} (offers: ${offered.join(", ") || "nothing"})`,
  );
}

function descriptors(value: unknown, field: string, bad: (why: string) => Error): Descriptor[] {
  if (!Array.isArray(value)) throw bad(`"${field}" is not a list`);
  return value.map((item, i) => descriptor(item, `${field}[${i}]`, bad));
}

function descriptor(value: unknown, field: string, bad: (why: string) => Error): Descriptor {
  if (!isObject(value)) throw bad(`"${field}" is missing`);
  const { mediaType, digest, size, platform } = value;
  if (typeof digest !== "string" || !isDigest(digest)) {
    throw bad(`"${field}" has an unsupported digest ${JSON.stringify(digest)} (sha256 only)`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw bad(`"${field}" has a bad size`);
  const result: Descriptor = { mediaType: typeof mediaType === "string" ? mediaType : "", digest, size };
  if (isObject(platform) && typeof platform.os === "string" && typeof platform.architecture === "string") {
    result.platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === "string") result.platform.variant = platform.variant;
  }
  return result;
}

function baseType(contentType: string | null): string {
  return (contentType ?? "").split(";")[0]!.trim();
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
