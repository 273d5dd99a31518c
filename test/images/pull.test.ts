import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createImageStore, ImagePullError, type ImageStore } from "../../cell-agent/src/images/index.js";
import {
  pushBusyboxImage,
  pushImage,
  pushIndex,
  startRegistry,
  type PushImageOptions,
  type TestRegistry,
} from "../fixtures/registry.js";
import { caught, createTempDirs, run } from "./helpers.js";
import { startRegistryProxy } from "./registry-proxy.js";

let registry: TestRegistry;
const temp = createTempDirs();

beforeAll(async () => {
  registry = await startRegistry();
});
afterAll(async () => {
  await registry.stop();
});
afterEach(async () => {
  await temp.cleanup();
});

async function newStore(defaultRegistry = registry.url): Promise<ImageStore> {
  return createImageStore({ cacheDir: await temp.make("image-cache-"), defaultRegistry });
}

/** Layer 1 has files, some of which layer 2 deletes (whiteout) or replaces wholesale (opaque dir). */
function twoLayers(mediaType: "oci" | "docker"): PushImageOptions {
  return {
    mediaType,
    env: ["PATH=/usr/bin:/bin", "GREETING=hello world"],
    workingDir: "/app",
    user: "nobody",
    layers: [
      {
        "app/one.txt": "one\n",
        "app/doomed.txt": "delete me\n",
        "etc/conf/old.conf": "old\n",
        "etc/conf/sub/deep.conf": "old deep\n",
        "bin/tool": { file: "#!/bin/sh\necho tool\n", mode: 0o755, uid: 1000, gid: 1001 },
        "bin/link": { symlink: "tool" },
      },
      {
        "app/two.txt": "two\n",
        "app/doomed.txt": { whiteout: true },
        "etc/conf": { opaque: true },
        "etc/conf/new.conf": "new\n",
      },
    ],
  };
}

describe("pulling images from a real registry", () => {
  it.each(["oci", "docker"] as const)(
    "pulls a two-layer image with %s media types: layer files, env, workdir and user",
    async (mediaType) => {
      const digest = await pushImage(registry, `org/two-${mediaType}`, "v1", twoLayers(mediaType));
      const store = await newStore();

      const image = await store.pull(`docker://${registry.url}/org/two-${mediaType}#v1`);

      expect(image.digest).toBe(digest);
      expect(image.pulled).toBe(true);
      expect(image.env).toEqual(["PATH=/usr/bin:/bin", "GREETING=hello world"]);
      expect(image.workingDir).toBe("/app");
      expect(image.user).toBe("nobody");
      expect(image.layers).toHaveLength(2);
      const [lower, upper] = image.layers as [string, string];
      expect(await readFile(join(lower, "app/one.txt"), "utf8")).toBe("one\n");
      expect(await readFile(join(upper, "app/two.txt"), "utf8")).toBe("two\n");
      const tool = await lstat(join(lower, "bin/tool"));
      expect([tool.uid, tool.gid, tool.mode & 0o777]).toEqual([1000, 1001, 0o755]);
      expect(await readlink(join(lower, "bin/link"))).toBe("tool");
    },
  );

  it("stores whiteouts in overlay form, so the layers mount as overlay lowerdirs with deletions applied", async () => {
    await pushImage(registry, "org/whiteouts", "v1", twoLayers("oci"));
    const store = await newStore();
    const image = await store.pull(`docker://${registry.url}/org/whiteouts#v1`);

    const upper = image.layers[1]!;
    const whiteout = await lstat(join(upper, "app/doomed.txt"));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    const { stdout: opaque } = await run("getfattr", ["--only-values", "-n", "trusted.overlay.opaque", join(upper, "etc/conf")]);
    expect(opaque).toBe("y");
    expect(await readdir(join(upper, "app"))).not.toContain(".wh.doomed.txt");

    const merged = await temp.mountOverlay(image.layers);
    expect((await readdir(join(merged, "app"))).sort()).toEqual(["one.txt", "two.txt"]);
    expect(await readdir(join(merged, "etc/conf"))).toEqual(["new.conf"]);
    expect(await readFile(join(merged, "bin/tool"), "utf8")).toContain("echo tool");
  });

  it("pulls uncompressed tar layers", async () => {
    await pushImage(registry, "org/plain", "v1", {
      compression: "none",
      layers: [{ "data/a.txt": "plain a\n" }, { "data/b.txt": "plain b\n" }],
    });
    const image = await (await newStore()).pull(`docker://${registry.url}/org/plain#v1`);
    expect(await readFile(join(image.layers[0]!, "data/a.txt"), "utf8")).toBe("plain a\n");
    expect(await readFile(join(image.layers[1]!, "data/b.txt"), "utf8")).toBe("plain b\n");
    expect(image.workingDir).toBe("/");
    expect(image.user).toBe("");
  });

  it.each(["oci", "docker"] as const)("picks linux/amd64 from a multi-platform %s index", async (mediaType) => {
    const indexDigest = await pushIndex(
      registry,
      `org/multi-${mediaType}`,
      "latest",
      [
        { os: "linux", architecture: "arm64", image: { layers: [{ "arch.txt": "arm64\n" }], env: ["ARCH=arm64"] } },
        { os: "linux", architecture: "amd64", image: { layers: [{ "arch.txt": "amd64\n" }], env: ["ARCH=amd64"] } },
      ],
      mediaType,
    );
    const image = await (await newStore()).pull(`docker://${registry.url}/org/multi-${mediaType}`);
    expect(image.digest).toBe(indexDigest);
    expect(image.env).toEqual(["ARCH=amd64"]);
    expect(await readFile(join(image.layers[0]!, "arch.txt"), "utf8")).toBe("amd64\n");
  });

  it("fails clearly when an index has no linux/amd64 image", async () => {
    await pushIndex(registry, "org/armonly", "latest", [
      { os: "linux", architecture: "arm64", image: { layers: [{ "x.txt": "x" }] } },
    ]);
    const { error } = await caught(async () => (await newStore()).pull(`docker://${registry.url}/org/armonly`));
    expect(error).toBeInstanceOf(ImagePullError);
    expect((error as ImagePullError).reason).toBe(
      `no linux/amd64 image in ${registry.url}/org/armonly:latest (offers: linux/arm64)`,
    );
  });

  it("resolves docker:///name to library/name on the default registry", async () => {
    await pushImage(registry, "library/solo", "v2", { layers: [{ "solo.txt": "official\n" }] });
    const image = await (await newStore(registry.url)).pull("docker:///solo#v2");
    expect(await readFile(join(image.layers[0]!, "solo.txt"), "utf8")).toBe("official\n");
  });

  it("pulls a busybox image that runs, and serves it from the cache the second time", async () => {
    await pushBusyboxImage(registry, "org/busybox", "latest");
    const store = await newStore();
    const url = `docker://${registry.url}/org/busybox`;

    let started = performance.now();
    const first = await store.pull(url);
    const firstMs = performance.now() - started;
    started = performance.now();
    const second = await store.pull(url);
    const cachedMs = performance.now() - started;

    expect([first.pulled, second.pulled]).toEqual([true, false]);
    expect(second.layers).toEqual(first.layers);
    const { stdout } = await run("chroot", [first.layers[0]!, "/bin/sh", "-c", "echo hello from $(pwd)"]);
    expect(stdout).toBe("hello from /\n");
    expect(cachedMs).toBeLessThan(firstMs);
    console.info(`busybox pull: first ${firstMs.toFixed(0)} ms, cached ${cachedMs.toFixed(0)} ms`);
  });

  it("answers a Bearer token challenge by fetching an anonymous token from the realm", async () => {
    await pushImage(registry, "org/private", "v1", { layers: [{ "secret.txt": "behind auth\n" }] });
    const proxy = await startRegistryProxy(registry.url, { bearer: true });
    try {
      const image = await (await newStore()).pull(`docker://${proxy.url}/org/private#v1`);
      expect(await readFile(join(image.layers[0]!, "secret.txt"), "utf8")).toBe("behind auth\n");
      // One token for the repository, reused for the config and layer blobs.
      expect(proxy.requests.filter((r) => r === "GET /token")).toHaveLength(1);
      expect(proxy.requests[0]).toBe("GET /v2/org/private/manifests/v1");
    } finally {
      await proxy.close();
    }
  });

  it.each([
    ["a symlink", (outside: string) => ({ escape: { symlink: outside }, "escape/pwned": "gotcha\n" })],
    ["a relative symlink", (outside: string) => ({ up: { symlink: `../../../../..${outside}` }, "up/pwned": "gotcha\n" })],
    ["a .. member name", (outside: string) => ({ [`../../../../..${outside}/pwned`]: "gotcha\n" })],
  ])("rejects a layer that tries to write outside through %s, leaving nothing behind", async (_, layer) => {
    const outside = await temp.make("outside-");
    const repo = `org/evil-${outside.slice(-6).toLowerCase()}`;
    await pushImage(registry, repo, "v1", { layers: [{ "ok.txt": "fine\n", ...layer(outside) }] });
    const store = await newStore();
    const { error } = await caught(() => store.pull(`docker://${registry.url}/${repo}#v1`));
    expect((error as ImagePullError).kind).toBe("extract-failed");
    expect((error as ImagePullError).reason).toMatch(/failed to extract layer sha256:[a-f0-9]{64}: /);
    expect(await readdir(outside)).toEqual([]);
  });
});
