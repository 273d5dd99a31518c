import type { Logger } from "pino";
import { ImagePullError } from "./errors.js";
import { fetchFailure } from "./fetch-failure.js";
import type { Descriptor } from "./manifest.js";
import { MANIFEST_ACCEPT } from "./media-types.js";
import { createRequestTimer, type RequestTimer } from "./request-timer.js";
import { readAll, sha256Digest, verifiedChunks } from "./verified-blob.js";
import { parseChallenge, type AuthChallenge } from "./www-authenticate.js";

export interface RegistryClientOptions {
  /** "host[:port]". */
  host: string;
  /** http instead of https. */
  insecure: boolean;
  manifestTimeoutMs: number;
  blobIdleTimeoutMs: number;
  fetch: typeof fetch;
  logger: Logger;
}

export interface FetchedManifest {
  digest: string;
  contentType: string | null;
  body: Buffer;
}

/** Docker Registry HTTP API v2, anonymous pulls only (Bearer tokens fetched from the challenge's realm). */
export interface RegistryClient {
  readonly host: string;
  /** GET a manifest; its digest is checked against a digest reference or Docker-Content-Digest. */
  getManifest(repository: string, reference: string, label: string, signal?: AbortSignal): Promise<FetchedManifest>;
  /** A small blob (an image config), read whole and verified. */
  getBlob(repository: string, blob: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  /** A blob's bytes as they arrive; the digest is verified when the iteration ends. */
  streamBlob(repository: string, blob: Descriptor, signal?: AbortSignal): AsyncGenerator<Buffer>;
}

interface TokenResponse {
  token?: unknown;
  access_token?: unknown;
  expires_in?: unknown;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
const DEFAULT_TOKEN_SECONDS = 60;

export function createRegistryClient(opts: RegistryClientOptions): RegistryClient {
  const base = `${opts.insecure ? "http" : "https"}://${opts.host}`;
  const tokens = new Map<string, { token: string; expiresAt: number }>();

  async function send(repository: string, path: string, accept: string, timer: RequestTimer): Promise<Response> {
    const url = `${base}/v2/${repository}/${path}`;
    const scope = `repository:${repository}:pull`;
    const cached = tokens.get(scope);
    const first = await get(url, accept, cached && cached.expiresAt > Date.now() ? cached.token : undefined, timer);
    if (first.status !== 401) return first;
    const challenge = parseChallenge(first.headers.get("www-authenticate"));
    await first.body?.cancel();
    if (challenge?.scheme !== "bearer" || !challenge.params.realm) {
      throw unauthorized(repository, "no anonymous token offered");
    }
    const token = await fetchToken(challenge, scope, timer);
    const second = await get(url, accept, token, timer);
    if (second.status === 401) {
      await second.body?.cancel();
      throw unauthorized(repository, "anonymous token refused (image missing or private)");
    }
    return second;
  }

  function get(url: string, accept: string, token: string | undefined, timer: RequestTimer): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (token) headers.authorization = `Bearer ${token}`;
    return opts.fetch(url, { headers, signal: timer.signal });
  }

  async function fetchToken(challenge: AuthChallenge, defaultScope: string, timer: RequestTimer): Promise<string> {
    const { realm, service, scope = defaultScope } = challenge.params;
    const url = new URL(realm!);
    if (service) url.searchParams.set("service", service);
    url.searchParams.set("scope", scope);
    const res = await opts.fetch(url, { signal: timer.signal });
    if (!res.ok) {
      await res.body?.cancel();
      throw unauthorized(scope, `token endpoint ${url.origin}${url.pathname} answered ${res.status}`);
    }
    const doc = (await res.json().catch(() => ({}))) as TokenResponse;
    const token = typeof doc.token === "string" ? doc.token : doc.access_token;
    if (typeof token !== "string" || token === "") throw unauthorized(scope, "token endpoint gave no token");
    const seconds = typeof doc.expires_in === "number" ? doc.expires_in : DEFAULT_TOKEN_SECONDS;
    // Renew a little early so a token never expires between check and use.
    tokens.set(defaultScope, { token, expiresAt: Date.now() + Math.max(seconds - 10, 1) * 1000 });
    return token;
  }

  function unauthorized(what: string, why: string): ImagePullError {
    return new ImagePullError("unauthorized", `registry ${opts.host} refused access to ${what}: ${why}`);
  }

  async function getManifest(repository: string, reference: string, label: string, signal?: AbortSignal) {
    const timer = createRequestTimer(opts.manifestTimeoutMs, "deadline", signal);
    try {
      const res = await send(repository, `manifests/${reference}`, MANIFEST_ACCEPT, timer);
      if (res.status === 404) {
        await res.body?.cancel();
        throw new ImagePullError("not-found", `image not found: ${label}`);
      }
      await expectOk(res, `manifest of ${label}`);
      const body = await readAll(capped(res.body!, MAX_MANIFEST_BYTES, `manifest of ${label}`));
      const digest = sha256Digest(body);
      const claimed = reference.startsWith("sha256:") ? reference : res.headers.get("docker-content-digest");
      if (claimed && claimed !== digest) {
        const why = `digest mismatch for ${claimed}: manifest of ${label} hashes to ${digest}`;
        throw new ImagePullError("digest-mismatch", why);
      }
      return { digest, contentType: res.headers.get("content-type"), body };
    } catch (err) {
      throw fetchFailure(err, opts.host, `fetching the manifest of ${label}`, timer, signal);
    } finally {
      timer.dispose();
    }
  }

  async function getBlob(repository: string, blob: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    if (blob.size > MAX_CONFIG_BYTES) {
      throw new ImagePullError("bad-manifest", `image config ${blob.digest} is too large (${blob.size} bytes)`);
    }
    return readAll(streamBlob(repository, blob, signal));
  }

  async function* streamBlob(repository: string, blob: Descriptor, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const timer = createRequestTimer(opts.blobIdleTimeoutMs, "idle", signal);
    const what = `downloading ${blob.digest} from ${opts.host}/${repository}`;
    try {
      const res = await send(repository, `blobs/${blob.digest}`, "*/*", timer);
      if (res.status === 404) {
        await res.body?.cancel();
        throw new ImagePullError("not-found", `blob not found: ${blob.digest} in ${opts.host}/${repository}`);
      }
      await expectOk(res, `blob ${blob.digest}`);
      yield* verifiedChunks(res.body!, blob, () => timer.touch());
    } catch (err) {
      throw fetchFailure(err, opts.host, what, timer, signal);
    } finally {
      timer.dispose();
    }
  }

  async function expectOk(res: Response, what: string): Promise<void> {
    if (res.ok) return;
    const detail = registryErrorDetail(await res.text().catch(() => ""));
    throw new ImagePullError(
      res.status === 403 ? "unauthorized" : "registry-error",
      `registry error: ${opts.host} answered ${res.status} for ${what}${detail ? `: ${detail}` : ""}`,
    );
  }

  return { host: opts.host, getManifest, getBlob, streamBlob };
}

/** Stops reading a response that grows past `limit` bytes. */
async function* capped(body: AsyncIterable<Uint8Array>, limit: number, what: string): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > limit) throw new ImagePullError("bad-manifest", `${what} is larger than ${limit} bytes`);
    yield Buffer.from(chunk);
  }
}

/** The registry's JSON error body: {"errors":[{"code":"...","message":"..."}]}. */
function registryErrorDetail(text: string): string {
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = doc.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(" ");
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return text.slice(0, 200).trim();
}
