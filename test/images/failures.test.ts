import { once } from "node:events";
import { readdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createImageStore, ImagePullError, type ImageStoreOptions } from "../../cell-agent/src/images/index.js";
import { pushImage, startRegistry, type TestRegistry } from "../fixtures/registry.js";
import { caught, createTempDirs, manifestOf } from "./helpers.js";
import { startRegistryProxy, type ProxyOptions, type RegistryProxy } from "./registry-proxy.js";

let registry: TestRegistry;
const temp = createTempDirs();
const proxies: RegistryProxy[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  await pushImage(registry, "org/present", "v1", {
    layers: [{ "a.txt": "layer one\n" }, { "b.txt": "layer two\n".repeat(100) }],
  });
});
afterAll(async () => {
  await registry.stop();
});
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  await temp.cleanup();
});

async function store(opts: Partial<ImageStoreOptions> = {}) {
  const cacheDir = await temp.make();
  return { cacheDir, store: createImageStore({ cacheDir, defaultRegistry: registry.url, ...opts }) };
}

async function proxy(opts: ProxyOptions): Promise<RegistryProxy> {
  const started = await startRegistryProxy(registry.url, opts);
  proxies.push(started);
  return started;
}

async function pullError(pull: () => Promise<unknown>): Promise<{ error: ImagePullError; ms: number }> {
  const { error, ms } = await caught(pull);
  expect(error).toBeInstanceOf(ImagePullError);
  return { error: error as ImagePullError, ms };
}

describe("failed pulls", () => {
  it("reports a missing image quickly and by name", async () => {
    const { store: images } = await store();
    const { error, ms } = await pullError(() => images.pull(`docker://${registry.url}/org/missing`));
    expect(error.reason).toBe(`image not found: ${registry.url}/org/missing:latest`);
    expect(error.message).toBe(error.reason);
    expect(error.kind).toBe("not-found");
    expect(ms).toBeLessThan(2000);
  });

  it("reports a missing tag of an existing image", async () => {
    const { store: images } = await store();
    const { error } = await pullError(() => images.pull("docker:///org/present#nope"));
    expect(error.reason).toBe(`image not found: ${registry.url}/org/present:nope`);
  });

  it.each([
    ["a layer", (m: { layers: Array<{ digest: string }> }) => m.layers[1]!.digest],
    ["the config", (m: { config: { digest: string } }) => m.config.digest],
  ])("rejects %s whose bytes were altered on the way, naming its digest", async (_, pick) => {
    const victim = pick(await manifestOf(registry.url, "org/present", "v1"));
    const flipping = await proxy({ corrupt: (digest) => digest === victim });
    const { cacheDir, store: images } = await store();

    const { error } = await pullError(() => images.pull(`docker://${flipping.url}/org/present#v1`));

    expect(error.kind).toBe("digest-mismatch");
    expect(error.reason).toMatch(new RegExp(`^digest mismatch for ${victim}: content hashes to sha256:[a-f0-9]{64}$`));
    expect(await readdir(join(cacheDir, "layers"))).not.toContain(victim.slice(7));
  });

  it("rejects a manifest whose bytes do not match the digest the registry announced", async () => {
    const digest = (await fetch(`http://${registry.url}/v2/org/present/manifests/v1`, {
      method: "HEAD",
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })).headers.get("docker-content-digest");
    const flipping = await proxy({ corruptManifests: true });
    const { store: images } = await store();

    const { error } = await pullError(() => images.pull(`docker://${flipping.url}/org/present#v1`));

    expect(error.kind).toBe("digest-mismatch");
    expect(error.reason).toMatch(
      new RegExp(`^digest mismatch for ${digest}: manifest of ${flipping.url}/org/present:v1 hashes to sha256:`),
    );
  });

  it("fails at once when the registry is unreachable", async () => {
    const port = await closedPort();
    const { store: images } = await store();
    const { error, ms } = await pullError(() => images.pull(`docker://127.0.0.1:${port}/org/present#v1`));
    expect(error.kind).toBe("unreachable");
    expect(error.reason).toContain(`registry unreachable: 127.0.0.1:${port} (connect ECONNREFUSED`);
    expect(ms).toBeLessThan(2000);
  });

  it("gives up on a registry that accepts connections but never answers", async () => {
    const silent = await proxy({ stallManifests: true });
    const { store: images } = await store({ manifestTimeoutMs: 300 });
    const { error, ms } = await pullError(() => images.pull(`docker://${silent.url}/org/present#v1`));
    expect(error.kind).toBe("timeout");
    expect(error.reason).toBe(
      `registry timed out: ${silent.url} sent nothing for 300 ms while fetching the manifest of ${silent.url}/org/present:v1`,
    );
    expect(ms).toBeLessThan(2000);
  });

  it("gives up on a blob download that stops sending", async () => {
    const victim = (await manifestOf(registry.url, "org/present", "v1")).layers[1]!.digest;
    const stalling = await proxy({ stallBlob: (digest) => digest === victim });
    const { store: images } = await store({ blobIdleTimeoutMs: 300 });
    const { error, ms } = await pullError(() => images.pull(`docker://${stalling.url}/org/present#v1`));
    expect(error.kind).toBe("timeout");
    expect(error.reason).toContain(`sent nothing for 300 ms while downloading ${victim}`);
    expect(ms).toBeLessThan(2000);
  });

  it("stops promptly when the caller aborts", async () => {
    const silent = await proxy({ stallManifests: true });
    const { store: images } = await store();
    const abort = new AbortController();
    const pulling = images.pull(`docker://${silent.url}/org/present#v1`, abort.signal);
    await silent.received;
    abort.abort();
    const { error, ms } = await pullError(() => pulling);
    expect(error.kind).toBe("aborted");
    expect(error.reason).toBe(`image pull aborted: ${silent.url}/org/present:v1`);
    expect(ms).toBeLessThan(500);
  });

  it("rejects a malformed rootfs URL before touching the network", async () => {
    const { store: images } = await store();
    const { error } = await pullError(() => images.pull("docker:///Not/Valid"));
    expect(error.kind).toBe("invalid-reference");
  });
});

async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}
