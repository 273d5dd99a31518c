import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { DIEGO_BIN, startTestReceptor } from "../fixtures/receptor.js";

// `diego lrp ...` as a user runs it: the compiled CLI as its own process against a real receptor
// and nats-server (no cells: the instances stay UNCLAIMED, which is what the tables then show).

let nats: TestNats;
let receptor: Awaited<ReturnType<typeof startTestReceptor>>;

beforeAll(async () => {
  nats = await startNats();
  receptor = await startTestReceptor(nats.url);
});
afterAll(async () => {
  await receptor?.stop();
  await nats?.dispose();
});

async function diego(args: string[], input = ""): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [DIEGO_BIN, ...args], { env: { ...process.env, DIEGO_API: receptor.url }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(input);
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

const lrp = JSON.stringify({
  process_guid: "cli-lrp",
  domain: "cli",
  rootfs: "preloaded:cflinuxfs2",
  instances: 2,
  action: { run: { path: "/bin/httpd", args: ["-f"] } },
  ports: [8080],
});

describe("diego lrp", () => {
  it("creates, lists, scales, shows the instances of, kills and deletes an LRP", async () => {
    expect(await diego(["lrp", "create", "-f", "-"], lrp)).toEqual({ code: 0, stdout: "created LRP cli-lrp\n", stderr: "" });

    const list = await diego(["lrp", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[0]).toMatch(/^GUID\s+DOMAIN\s+INSTANCES\s+ROOTFS\s+PORTS$/);
    expect(list.stdout).toMatch(/cli-lrp\s+cli\s+2\s+preloaded:cflinuxfs2\s+8080/);

    const get = await diego(["lrp", "get", "cli-lrp", "--json"]);
    expect(JSON.parse(get.stdout)).toMatchObject({ process_guid: "cli-lrp", instances: 2 });

    expect((await diego(["lrp", "scale", "cli-lrp", "3"])).stdout).toBe("scaled LRP cli-lrp to 3\n");
    const actuals = await diego(["lrp", "actuals", "cli-lrp"]);
    expect(actuals.code).toBe(0);
    expect(actuals.stdout.trim().split("\n").slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ["0", "UNCLAIMED"],
      ["1", "UNCLAIMED"],
      ["2", "UNCLAIMED"],
    ]);

    expect((await diego(["lrp", "kill", "cli-lrp", "2"])).stdout).toBe("killed instance 2 of LRP cli-lrp\n");
    const json = JSON.parse((await diego(["lrp", "actuals", "cli-lrp", "--json"])).stdout) as { index: number }[];
    expect(json.map((a) => a.index).sort()).toEqual([0, 1]);

    expect((await diego(["lrp", "delete", "cli-lrp"])).stdout).toBe("deleted LRP cli-lrp\n");
    const gone = await diego(["lrp", "get", "cli-lrp"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("DesiredLRPNotFound");
  });

  it("names what is wrong: an invalid LRP, a bad count, an unknown command", async () => {
    const invalid = await diego(["lrp", "create", "-f", "-"], JSON.stringify({ process_guid: "x" }));
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain("InvalidLRP");
    expect(invalid.stderr).toContain("Invalid field: domain");
    const count = await diego(["lrp", "scale", "cli-lrp", "many"]);
    expect(count.code).toBe(2);
    expect(count.stderr).toContain("N must be a whole number");
    const unknown = await diego(["lrp", "frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'lrp frobnicate'");
    expect(unknown.stderr).toContain("diego lrp scale GUID N");
  });

  it("keeps LRP events out of 'diego task watch --json'", async () => {
    const child = spawn(process.execPath, [DIEGO_BIN, "task", "watch", "--json"], { env: { ...process.env, DIEGO_API: receptor.url }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const seen = (re: RegExp, read: () => string, stream: NodeJS.ReadableStream) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (re.test(read())) {
            stream.off("data", check);
            resolve();
          }
        };
        stream.on("data", check);
        check();
      });
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = once(child, "exit");
    try {
      await seen(/watching task changes/, () => stderr, child.stderr);
      expect((await diego(["lrp", "create", "-f", "-"], lrp.replace("cli-lrp", "watched-lrp"))).code).toBe(0);
      const task = JSON.stringify({ task_guid: "watched-task", domain: "cli", stack: "lucid64", action: { run: { path: "/bin/true" } } });
      expect((await diego(["task", "create", "-f", "-"], task)).code).toBe(0);
      await seen(/watched-task/, () => stdout, child.stdout);
    } finally {
      child.kill("SIGINT");
      await exited;
    }
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as { event: string });
    expect(lines.map((l) => l.event)).toEqual(["task_created"]);
  });
});
