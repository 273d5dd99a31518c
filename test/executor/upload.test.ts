import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { act, execute, startHarness, startHttpServer, taskOf, type Harness, type TestHttpServer } from "./harness.js";

let h: Harness;
let server: TestHttpServer;
let flaky = 0;

beforeAll(async () => {
  h = await startHarness();
  server = await startHttpServer((req, _body, res) => {
    if (req.url === "/ok") return res.writeHead(201).end();
    if (req.url === "/broken") return res.writeHead(500).end();
    if (req.url === "/flaky") return res.writeHead(flaky++ === 0 ? 503 : 200).end();
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  await server?.close();
  await h?.close();
});

const requestsTo = (p: string): TestHttpServer["requests"] => server.requests.filter((r) => r.url === p);

describe("upload action", () => {
  it("POSTs the file as application/octet-stream with Content-MD5 and logs the artifact lines", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.serial([act.sh("printf 'droplet bits' > /tmp/droplet"), act.upload({ from: "/tmp/droplet", to: `${server.url}/ok`, artifact: "droplet" })])),
    );
    expect(outcome).toEqual({ failed: false, failureReason: "", result: "" });
    const [req] = requestsTo("/ok");
    expect(req!.method).toBe("POST");
    expect(req!.body.toString()).toBe("droplet bits");
    expect(req!.headers["content-type"]).toBe("application/octet-stream");
    expect(req!.headers["content-md5"]).toBe(createHash("md5").update("droplet bits").digest("base64"));
    expect(req!.headers["content-length"]).toBe("12");
    expect(received.texts().slice(-2)).toEqual(["Uploading droplet...", "Uploaded droplet (12B)"]);
  });

  it("tries 3 times, then fails with 'Upload failed: Status code 500' and 'Failed to upload <artifact>'", async () => {
    const { outcome, received } = await execute(
      h,
      taskOf(act.serial([act.sh("echo x > /f"), act.upload({ from: "/f", to: `${server.url}/broken`, artifact: "result" })])),
    );
    expect(outcome).toEqual({ failed: true, failureReason: "Upload failed: Status code 500", result: "" });
    expect(requestsTo("/broken")).toHaveLength(3);
    expect(received.texts().slice(-2)).toEqual(["Uploading result...", "Failed to upload result"]);
    // The URL is never written to the user's log stream.
    expect(received.texts().join("\n")).not.toContain(server.url);
  });

  it("succeeds when a retry succeeds", async () => {
    const { outcome } = await execute(h, taskOf(act.serial([act.sh("echo x > /f"), act.upload({ from: "/f", to: `${server.url}/flaky` })])));
    expect(outcome.failed).toBe(false);
    expect(requestsTo("/flaky")).toHaveLength(2);
  });

  it("fails without a request when the file is missing", async () => {
    const before = server.requests.length;
    const { outcome } = await execute(h, taskOf(act.upload({ from: "/does/not/exist", to: `${server.url}/ok` })));
    expect(outcome).toEqual({ failed: true, failureReason: "Copying out of the container failed", result: "" });
    expect(server.requests.length).toBe(before);
  });

  it("never uploads a host file reached through a container symlink", async () => {
    const hostDir = await mkdtemp(path.join(os.tmpdir(), "host-secret-"));
    try {
      const secret = path.join(hostDir, "secret");
      await writeFile(secret, "HOST SECRET");
      const before = server.requests.length;
      for (const [setup, from] of [
        [`ln -s ${secret} /link`, "/link"],
        [`ln -s ${hostDir} /dir`, "/dir/secret"],
        ["ln -s / /tmp/up", `/tmp/up/../../../../..${secret}`],
      ]) {
        const { outcome } = await execute(h, taskOf(act.serial([act.sh(setup!), act.upload({ from: from!, to: `${server.url}/ok` })])));
        expect(outcome.failureReason).toBe("Copying out of the container failed");
      }
      expect(server.requests.length).toBe(before);
      expect(server.requests.some((r) => r.body.includes("HOST SECRET"))).toBe(false);
    } finally {
      await rm(hostDir, { recursive: true, force: true });
    }
  });
});
