import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDownloadCache } from "../../cell-agent/src/executor/index.js";
import { makeTgz, makeZip } from "./archives.js";
import { act, execute, startHarness, startHttpServer, taskOf, type Harness, type TestHttpServer } from "./harness.js";

let h: Harness;
let server: TestHttpServer;
let tgz: Buffer;
const hanging: Array<import("node:http").ServerResponse> = [];
let onHang: (() => void) | undefined;
const zip = makeZip({ "hello.txt": "hello from zip\n", "sub/dir/deep.txt": "deep\n" });
const ETAG = '"v1"';
const LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT";

beforeAll(async () => {
  [h, tgz] = await Promise.all([startHarness(), makeTgz({ "hello.txt": "hello from tgz\n", "bin/run.sh": "echo ran\n" })]);
  server = await startHttpServer((req, _body, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/app.tgz") return res.end(tgz);
    if (url.pathname === "/hang.tgz") {
      hanging.push(res);
      return onHang?.();
    }
    if (url.pathname === "/app.zip") return res.end(zip);
    if (url.pathname === "/notes.txt") return res.end("just text, not an archive");
    if (url.pathname === "/broken.tgz") return res.end(Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3, 4, 5]));
    if (url.pathname === "/etag.tgz") {
      if (req.headers["if-none-match"] === ETAG) return res.writeHead(304).end();
      return res.writeHead(200, { ETag: ETAG }).end(tgz);
    }
    if (url.pathname === "/last-modified.zip") {
      if (req.headers["if-modified-since"] === LAST_MODIFIED) return res.writeHead(304).end();
      return res.writeHead(200, { "Last-Modified": LAST_MODIFIED }).end(zip);
    }
    res.writeHead(404).end("not found");
  });
});
afterAll(async () => {
  for (const res of hanging) res.destroy();
  await server?.close();
  await h?.close();
});

describe("download action", () => {
  it("extracts a .tgz into `to`, owned by the action's user, and logs the artifact lines", async () => {
    const { outcome, received, sandbox } = await execute(
      h,
      taskOf(
        act.serial([
          act.download({ from: `${server.url}/app.tgz`, to: "/home/vcap/app", artifact: "app", user: "vcap" }),
          act.sh("cat /home/vcap/app/hello.txt; sh /home/vcap/app/bin/run.sh; stat -c %u /home/vcap/app/hello.txt"),
        ]),
      ),
    );
    expect(outcome).toEqual({ failed: false, failureReason: "", result: "" });
    expect(received.texts()).toEqual([
      "Downloading app...",
      `Downloaded app (${tgz.length}B)`,
      "hello from tgz",
      "ran",
      "2000",
      "Exit status 0",
    ]);
    // On the host the file belongs to the container user's mapped uid.
    const st = await stat(path.join(sandbox.rootfsPath, "home/vcap/app/hello.txt"));
    expect(st.uid).toBe(sandbox.hostRootUid + 2000);
    // The staging directory is gone.
    expect((await readdir(sandbox.rootfsPath)).filter((n) => n.startsWith(".diego-download"))).toEqual([]);
  });

  it("extracts a .zip (root user when user is empty) and logs nothing without an artifact", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.serial([act.download({ from: `${server.url}/app.zip`, to: "/app" }), act.sh("cat /app/hello.txt /app/sub/dir/deep.txt; stat -c %u /app/hello.txt")])),
    );
    expect(outcome.failed).toBe(false);
    expect(received.texts()).toEqual(["hello from zip", "deep", "0", "Exit status 0"]);
  });

  it("revalidates a cached download: the second fetch gets 304 (ETag or Last-Modified) and still extracts", async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), "dl-cache-"));
    try {
      const downloadCache = createDownloadCache({ dir: cacheDir });
      for (const [file, header] of [
        ["etag.tgz", "if-none-match"],
        ["last-modified.zip", "if-modified-since"],
      ] as const) {
        const before = server.requests.length;
        const task = (): ReturnType<typeof taskOf> =>
          taskOf(
            act.serial([
              act.download({ from: `${server.url}/${file}`, to: "/app", cacheKey: `key-${file}`, artifact: "droplet" }),
              act.sh("cat /app/hello.txt"),
            ]),
          );
        const first = await execute(h, task(), { downloadCache });
        const second = await execute(h, task(), { downloadCache });
        for (const run of [first, second]) {
          expect(run.outcome.failed).toBe(false);
          expect(run.received.texts()).toContain(file.endsWith("tgz") ? "hello from tgz" : "hello from zip");
        }
        const requests = server.requests.slice(before);
        expect(requests).toHaveLength(2);
        expect(requests[0]!.headers[header]).toBeUndefined();
        expect(requests[1]!.headers[header]).toBeDefined();
      }
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it("fails with 'Downloading failed' on an HTTP error or a file that is no archive", async () => {
    for (const file of ["missing.tgz", "notes.txt"]) {
      const { outcome, received } = await execute(h, taskOf(act.download({ from: `${server.url}/${file}`, to: "/app", artifact: "app" })));
      expect(outcome).toEqual({ failed: true, failureReason: "Downloading failed", result: "" });
      expect(received.texts()).toEqual(["Downloading app...", "Failed to download app"]);
    }
  });

  it("fails with 'Copying into the container failed' when unpacking fails", async () => {
    const broken = await execute(h, taskOf(act.download({ from: `${server.url}/broken.tgz`, to: "/app" })));
    expect(broken.outcome.failureReason).toBe("Copying into the container failed");
    // vcap may not write into /root.
    const denied = await execute(h, taskOf(act.download({ from: `${server.url}/app.tgz`, to: "/root/app", user: "vcap" })));
    expect(denied.outcome.failureReason).toBe("Copying into the container failed");
  });

  it("never writes through a container symlink to a host directory", async () => {
    const hostDir = await mkdtemp(path.join(os.tmpdir(), "host-target-"));
    try {
      // The link resolves inside the container: to a directory of the container's own...
      const { outcome, received } = await execute(
        h,
        taskOf(
          act.serial([
            act.sh(`mkdir -p ${hostDir} && ln -s ${hostDir} /app`),
            act.download({ from: `${server.url}/app.tgz`, to: "/app" }),
            act.download({ from: `${server.url}/app.zip`, to: "/app/sub" }),
            act.sh(`cat ${hostDir}/hello.txt`),
          ]),
        ),
      );
      expect(outcome.failed).toBe(false);
      expect(received.texts()).toContain("hello from tgz");
      // ...or nowhere when it dangles there.
      const dangling = await execute(
        h,
        taskOf(act.serial([act.sh(`ln -s ${hostDir} /app`), act.download({ from: `${server.url}/app.tgz`, to: "/app" })])),
      );
      expect(dangling.outcome.failureReason).toBe("Copying into the container failed");
      expect(await readdir(hostDir)).toEqual([]);
    } finally {
      await rm(hostDir, { recursive: true, force: true });
    }
  });

  it("stops a download at once on cancel and cleans up its staging directory", async () => {
    const controller = new AbortController();
    const arrived = new Promise<void>((resolve) => (onHang = resolve));
    const sandbox = await h.sandbox();
    const running = execute(h, taskOf(act.download({ from: `${server.url}/hang.tgz`, to: "/app" })), {
      sandbox,
      signal: controller.signal,
    });
    await arrived;
    const started = Date.now();
    controller.abort();
    const { outcome } = await running;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(outcome).toEqual({ failed: true, failureReason: "task was cancelled", result: "" });
    expect((await readdir(sandbox.rootfsPath)).filter((n) => n.startsWith(".diego-download"))).toEqual([]);
  });
});
