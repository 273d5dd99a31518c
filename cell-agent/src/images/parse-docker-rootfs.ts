import { ImagePullError } from "./errors.js";

export interface DockerImageRef {
  /** "host[:port]", or undefined for the default registry (`docker:///...`). */
  registry: string | undefined;
  /** e.g. "library/busybox". */
  repository: string;
  /** A tag ("latest" when absent) or a digest ("sha256:<hex>"). */
  reference: string;
}

const SCHEME = "docker://";
// Docker's reference grammar (distribution/reference): lowercase path components.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const MAX_REPOSITORY = 255;

/** Parses `docker:///org/image#tag` (default registry) or `docker://host:port/org/image#tag`. */
export function parseDockerRootfs(url: string): DockerImageRef {
  const invalid = (why: string) => new ImagePullError("invalid-reference", `invalid docker rootfs "${url}": ${why}`);
  if (!url.startsWith(SCHEME)) throw invalid(`must start with ${SCHEME}`);
  const rest = url.slice(SCHEME.length);
  const hashAt = rest.indexOf("#");
  const location = hashAt === -1 ? rest : rest.slice(0, hashAt);
  const fragment = hashAt === -1 ? undefined : rest.slice(hashAt + 1);
  if (/[?\s]/.test(location)) throw invalid("query strings and spaces are not allowed");

  const slashAt = location.indexOf("/");
  if (slashAt === -1) throw invalid("missing image path (docker:///org/image or docker://host/org/image)");
  const host = location.slice(0, slashAt);
  const path = location.slice(slashAt + 1);
  if (host !== "" && !HOST.test(host)) throw invalid(`bad registry host "${host}"`);

  const registry = host === "" ? undefined : host;
  const repository = parseRepository(path, registry === undefined, invalid);
  const reference = parseReference(fragment, invalid);
  return { registry, repository, reference };
}

function parseRepository(path: string, onDefault: boolean, invalid: (why: string) => Error): string {
  if (path === "") throw invalid("missing image name");
  const segments = path.split("/");
  for (const segment of segments) {
    if (!COMPONENT.test(segment)) throw invalid(`bad repository "${path}" (lowercase letters, digits and . _ - only)`);
  }
  // Like `docker pull busybox`: a bare name on the default registry is an official image.
  const repository = onDefault && segments.length === 1 ? `library/${path}` : path;
  if (repository.length > MAX_REPOSITORY) throw invalid(`repository longer than ${MAX_REPOSITORY} characters`);
  return repository;
}

function parseReference(fragment: string | undefined, invalid: (why: string) => Error): string {
  if (fragment === undefined) return "latest";
  if (fragment === "") throw invalid("empty tag after #");
  if (fragment.includes(":")) {
    if (!DIGEST.test(fragment)) throw invalid(`bad digest "${fragment}" (only sha256:<64 hex> is supported)`);
    return fragment;
  }
  if (!TAG.test(fragment)) throw invalid(`bad tag "${fragment}"`);
  return fragment;
}

export function isDigest(reference: string): boolean {
  return DIGEST.test(reference);
}

/** "host/org/image:tag" or "host/org/image@sha256:...", for messages and cache keys. */
export function formatImageRef(host: string, repository: string, reference: string): string {
  return isDigest(reference) ? `${host}/${repository}@${reference}` : `${host}/${repository}:${reference}`;
}
