import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createImageStore, ImagePullError } from "../../cell-agent/src/images/index.js";
import { pushImage, startRegistry, type TestRegistry } from "../fixtures/registry.js";
import { caught, createTempDirs, manifestOf } from "./helpers.js";
import { startRegistryProxy, type RegistryProxy } from "./registry-proxy.js";

let registry: TestRegistry;
const temp = createTempDirs();
const proxies: RegistryProxy[] = [];

beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry.stop();
});
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  await temp.cleanup();
});

async function proxy(opts: Parameters<typeof startRegistryProxy>[1] = {}): Promise<RegistryProxy> {
  const started = await startRegistryProxy(registry.url, opts);
  proxies.push(started);
  return started;
}

async function pushTwoLayers(repo: string): Promise<string> {
  return pushImage(registry, repo, "v1", {
    env: ["NAME=cached"],
    layers: [{ "base/file.txt": `base of ${repo}\n` }, { "top/file.txt": `top of ${repo}\n` }],
  });
}

describe("image cache", () => {
  it("serves a second pull from the cache: pulled is false and no blob is downloaded", async () => {
    await pushTwoLayers("org/again");
    const via = await proxy();
    const store = createImageStore({ cacheDir: await temp.make(), defaultRegistry: via.url });

    const first = await store.pull(`docker://${via.url}/org/again#v1`);
    expect(via.blobGets()).toHaveLength(3); // config + 2 layers
    via.requests.length = 0;
    const second = await store.pull(`docker://${via.url}/org/again#v1`);

    expect(first.pulled).toBe(true);
    expect(second).toEqual({ ...first, pulled: false });
    // The tag is re-resolved (one manifest GET) but nothing else is fetched.
    expect(via.requests).toEqual(["GET /v2/org/again/manifests/v1"]);
  });

  it("shares one download among concurrent pulls of the same image", async () => {
    await pushTwoLayers("org/together");
    const via = await proxy();
    const store = createImageStore({ cacheDir: await temp.make(), defaultRegistry: via.url });

    const results = await Promise.all(
      Array.from({ length: 4 }, () => store.pull(`docker://${via.url}/org/together#v1`)),
    );

    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(via.blobGets()).toHaveLength(3);
    expect(new Set(via.blobGets()).size).toBe(3);
    expect(via.requests.filter((r) => r.includes("/manifests/"))).toHaveLength(1);
  });

  it("downloads a layer shared by two images once, even when both are pulled at the same time", async () => {
    const shared = { "shared/base.txt": "common base\n" };
    await pushImage(registry, "org/left", "v1", { layers: [shared, { "left.txt": "left\n" }] });
    await pushImage(registry, "org/right", "v1", { layers: [shared, { "right.txt": "right\n" }] });
    const via = await proxy();
    const store = createImageStore({ cacheDir: await temp.make(), defaultRegistry: via.url });

    const [left, right] = await Promise.all([
      store.pull(`docker://${via.url}/org/left#v1`),
      store.pull(`docker://${via.url}/org/right#v1`),
    ]);

    expect(left.layers[0]).toBe(right.layers[0]);
    const sharedDigest = (await manifestOf(registry.url, "org/left", "v1")).layers[0]!.digest;
    expect(via.blobGets().filter((r) => r.endsWith(sharedDigest))).toHaveLength(1);
    expect(via.blobGets()).toHaveLength(5); // 2 configs + shared + left + right
  });

  it("uses the cached manifest of a tag pulled before when the registry is unreachable", async () => {
    await pushTwoLayers("org/offline");
    const via = await proxy();
    const store = createImageStore({ cacheDir: await temp.make(), defaultRegistry: via.url });
    const online = await store.pull(`docker://${via.url}/org/offline#v1`);
    await via.close();
    proxies.splice(proxies.indexOf(via), 1);

    const offline = await store.pull(`docker://${via.url}/org/offline#v1`);

    expect(offline).toEqual({ ...online, pulled: false });
    // A tag never pulled before still fails, naming the registry.
    const { error } = await caught(() => store.pull(`docker://${via.url}/org/offline#never`));
    expect((error as ImagePullError).reason).toMatch(/^registry unreachable: 127\.0\.0\.1:\d+ /);
  });

  it("serves a digest reference from the cache without asking the registry at all", async () => {
    const digest = await pushTwoLayers("org/pinned");
    const via = await proxy();
    const store = createImageStore({ cacheDir: await temp.make(), defaultRegistry: via.url });
    const first = await store.pull(`docker://${via.url}/org/pinned#${digest}`);
    via.requests.length = 0;

    const second = await store.pull(`docker://${via.url}/org/pinned#${digest}`);

    expect(first.digest).toBe(digest);
    expect(second).toEqual({ ...first, pulled: false });
    expect(via.requests).toEqual([]);
  });

  it("re-downloads only the layer that went missing from the cache", async () => {
    await pushTwoLayers("org/partial");
    const cacheDir = await temp.make();
    const via = await proxy();
    const store = createImageStore({ cacheDir, defaultRegistry: via.url });
    const first = await store.pull(`docker://${via.url}/org/partial#v1`);
    await temp.remove(first.layers[1]!);
    via.requests.length = 0;

    const again = await store.pull(`docker://${via.url}/org/partial#v1`);

    expect(again.pulled).toBe(true);
    expect(via.blobGets()).toEqual([`GET /v2/org/partial/blobs/sha256:${first.layers[1]!.split("/").pop()}`]);
    expect(await readFile(join(again.layers[1]!, "top/file.txt"), "utf8")).toBe("top of org/partial\n");
  });

  it("never leaves a half-extracted layer: an aborted pull leaves no layer, and the next pull completes", async () => {
    const big = randomBytes(2 * 1024 * 1024); // Incompressible, so half the blob is half the file.
    await pushImage(registry, "org/interrupted", "v1", {
      layers: [{ "base/file.txt": "base\n" }, { "top/big.bin": big, "top/last.txt": "last\n" }],
    });
    const topDigest = (await manifestOf(registry.url, "org/interrupted", "v1")).layers[1]!.digest;
    const cacheDir = await temp.make();
    const stalling = await proxy({ stallBlob: (digest) => digest === topDigest });
    const store = createImageStore({ cacheDir, defaultRegistry: stalling.url });
    const abort = new AbortController();
    const pulling = store.pull(`docker://${stalling.url}/org/interrupted#v1`, abort.signal);
    pulling.catch(() => undefined); // Awaited below; this keeps an early test failure from leaking it.
    await stalling.stalled;
    await waitFor(() => partialFileIn(join(cacheDir, "tmp"), "big.bin"));
    abort.abort();

    const { error, ms } = await caught(() => pulling);

    expect((error as ImagePullError).kind).toBe("aborted");
    expect(ms).toBeLessThan(1000);
    expect(await readdir(join(cacheDir, "layers"))).not.toContain(topDigest.slice(7));
    const image = await store.pull(`docker://${registry.url}/org/interrupted#v1`);
    expect(image.layers[1]).toBe(join(cacheDir, "layers", topDigest.slice(7)));
    expect((await readFile(join(image.layers[1]!, "top/big.bin"))).equals(big)).toBe(true);
    expect(await readFile(join(image.layers[1]!, "top/last.txt"), "utf8")).toBe("last\n");
  });

  it("discards leftovers of a crash mid-extract when a new store starts", async () => {
    await pushTwoLayers("org/crashed");
    const cacheDir = await temp.make();
    const { layers } = await manifestOf(registry.url, "org/crashed", "v1");
    // What a crash mid-extract leaves: a partial layer under tmp/, never under layers/.
    const partial = join(cacheDir, "tmp", `${layers[0]!.digest.slice(7, 19)}-abc123`);
    await mkdir(join(partial, "base"), { recursive: true });
    await writeFile(join(partial, "base", "half.txt"), "half");

    const store = createImageStore({ cacheDir, defaultRegistry: registry.url });
    const image = await store.pull(`docker:///org/crashed#v1`);

    expect(image.pulled).toBe(true);
    expect(await readdir(join(image.layers[0]!, "base"))).toEqual(["file.txt"]);
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  });
});

/** Waits for file-system progress made by a child process (tar), which offers no event to await. */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("condition not met within 5 s");
}

/** True once tar has started writing `name` somewhere under `dir` (other layers may come and go meanwhile). */
async function partialFileIn(dir: string, name: string): Promise<boolean> {
  try {
    return (await readdir(dir, { recursive: true })).some((path) => path.endsWith(name));
  } catch {
    return false;
  }
}
