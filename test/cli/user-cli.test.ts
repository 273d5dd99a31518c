import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { freePort } from "../fixtures/ports.js";
import { DIEGO_BIN } from "../fixtures/receptor.js";

// `diego task ...` and `diego cells` driven as a user would: the compiled CLI (bin/diego.js,
// `npm run build`) as its own process against a real receptor, auctioneer and runc cell, through
// pipes for --json and in a pseudo-terminal (util-linux `script`) for the tables and the spinner.

let cluster: TestCluster;
let dir: string;
beforeAll(async () => {
  cluster = await startCluster();
  dir = await mkdtemp(path.join(os.tmpdir(), "diego-user-cli-"));
});
afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `diego ARGS` through pipes, with DIEGO_API pointing at the test receptor. */
async function diego(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  const child = spawnDiego(args, opts.env);
  child.stdin!.end(opts.input ?? "");
  const [stdout, stderr] = [collect(child.stdout!), collect(child.stderr!)];
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout: stdout(), stderr: stderr() };
}

function spawnDiego(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [DIEGO_BIN, ...args], {
    env: { ...process.env, DIEGO_API: cluster.url, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

function collect(stream: NodeJS.ReadableStream): () => string {
  let text = "";
  stream.on("data", (c: Buffer) => (text += c.toString()));
  return () => text;
}

/** Resolves once `read()` matches, as the process writes. */
function waitFor(stream: NodeJS.ReadableStream, read: () => string, re: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const m = read().match(re);
      if (m) {
        stream.off("data", check);
        stream.off("end", ended);
        resolve(m);
      }
    };
    const ended = (): void => reject(new Error(`stream ended without ${re}: ${read()}`));
    stream.on("data", check);
    stream.on("end", ended);
    check();
  });
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `diego ARGS` in a pseudo-terminal: stdout and stderr are the terminal, merged. */
async function diegoInPty(args: string[]): Promise<Ran> {
  const command = [process.execPath, DIEGO_BIN, ...args].map(quote).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], {
    env: { ...process.env, DIEGO_API: cluster.url, COLUMNS: "160" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const [stdout, stderr] = [collect(child.stdout!), collect(child.stderr!)];
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout: stdout(), stderr: stderr() };
}

const task = (guid: string, action: unknown, extra: Record<string, unknown> = {}) => ({
  task_guid: guid,
  domain: "cli-test",
  stack: "lucid64",
  action,
  ...extra,
});

async function taskFile(name: string, body: unknown): Promise<string> {
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(body));
  return file;
}

describe("diego task through a pipe (--json)", () => {
  it("creates a task from stdin, then gets and lists it as JSON", async () => {
    const body = task("cli-stdin", { run: { path: "/bin/sh", args: ["-c", "echo from-stdin > /tmp/out"] } }, { result_file: "/tmp/out" });
    const created = await diego(["task", "create", "-f", "-", "--json"], { input: JSON.stringify(body) });
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(created.stdout)).toEqual({ task_guid: "cli-stdin", created: true });

    await cluster.waitCompleted("cli-stdin");
    const got = await diego(["task", "get", "cli-stdin", "--json"]);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ task_guid: "cli-stdin", state: "COMPLETED", failed: false, result: "from-stdin\n" });
    // created_at keeps every digit the API wrote (nanoseconds do not fit a JS number).
    expect(got.stdout).toMatch(/"created_at":[0-9]{19}\b/);

    const readable = await diego(["task", "get", "cli-stdin"]);
    expect(readable.stdout).toMatch(/^guid: +cli-stdin\ndomain: +cli-test\nstate: +COMPLETED\ncell: +-\noutcome: +succeeded\nage: +[0-9]+s \(created 20[0-9-]+T[0-9:.]+Z\)\nresult: +"from-stdin\\n"\n/);

    const listed = await diego(["task", "list", "--domain", "cli-test", "--json"]);
    expect(listed.code).toBe(0);
    const guids = (JSON.parse(listed.stdout) as Array<{ task_guid: string }>).map((t) => t.task_guid);
    expect(guids).toContain("cli-stdin");
    const other = await diego(["task", "list", "--domain", "no-such-domain", "--json"]);
    expect(JSON.parse(other.stdout)).toEqual([]);

    const deleted = await diego(["task", "delete", "cli-stdin"]);
    expect(deleted).toMatchObject({ code: 0, stdout: "deleted task cli-stdin\n" });
    expect(await cluster.getTask("cli-stdin")).toBeUndefined();
  });

  it("a missing guid exits 1 naming TaskNotFound", async () => {
    for (const sub of [["get"], ["cancel"], ["delete"]]) {
      const r = await diego(["task", ...sub, "no-such-task"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("diego: TaskNotFound: task with guid 'no-such-task' not found\n");
      expect(r.stdout).toBe("");
    }
  });

  it("an invalid task exits 1 with the API's InvalidTask message", async () => {
    const r = await diego(["task", "create", "-f", "-"], { input: JSON.stringify({ task_guid: "bad guid", domain: "d", stack: "lucid64" }) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^diego: InvalidTask: .*task_guid.*action/);
  });

  it("an unreachable API exits 1 naming its URL; usage errors exit 2", async () => {
    const port = await freePort();
    // Global flags may also come before the task command.
    const down = await diego(["task", "--api", `http://127.0.0.1:${port}`, "list"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`^diego: cannot reach the API at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));

    const noGuid = await diego(["task", "get"]);
    expect(noGuid).toMatchObject({ code: 2, stderr: "diego: 'diego task get' needs GUID (see 'diego task get --help')\n" });
    const badFlag = await diego(["cells", "--nope"]);
    expect(badFlag).toMatchObject({ code: 2, stderr: "diego: unknown flag --nope (see 'diego cells --help')\n" });
    const noFile = await diego(["task", "run", "-f", path.join(dir, "missing.json")]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/^diego: cannot read .*missing\.json: ENOENT/);
  });

  it("cancels a running task", async () => {
    await diego(["task", "create", "-f", await taskFile("long", task("cli-cancel", { run: { path: "/bin/sleep", args: ["60"] } }))]);
    const r = await diego(["task", "cancel", "cli-cancel", "--json"]);
    expect(r).toMatchObject({ code: 0, stdout: `${JSON.stringify({ task_guid: "cli-cancel", cancelled: true })}\n` });
    expect(await cluster.waitCompleted("cli-cancel")).toMatchObject({ failed: true, failure_reason: "task was cancelled" });
  });

  it("lists the cells as JSON", async () => {
    const r = await diego(["cells", "--json"]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ cell_id: string }>).map((c) => c.cell_id)).toEqual(cluster.cells.map((c) => c.cellId));
  });
});

describe("diego task run", () => {
  it("exits 0 and prints the result of a succeeding task, with no animation through a pipe", async () => {
    const file = await taskFile("ok", task("cli-run-ok", { run: { path: "/bin/sh", args: ["-c", "sleep 0.3; echo it worked > /tmp/out"] } }, { result_file: "/tmp/out" }));
    const r = await diego(["task", "run", "-f", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^task cli-run-ok succeeded after [0-9.]+s\nresult:\nit worked\n$/);
    expect(r.stderr).toBe("");
  });

  it("exits 3 naming the failure_reason of a failing task; --json prints the TaskResponse; --rm deletes it", async () => {
    const file = await taskFile("fail", task("cli-run-fail", { run: { path: "/bin/sh", args: ["-c", "exit 7"] } }));
    const r = await diego(["task", "run", "-f", file]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^task cli-run-fail failed after [0-9.]+s: Exited with status 7\n$/);

    const again = task("cli-run-fail-json", { run: { path: "/bin/sh", args: ["-c", "exit 7"] } });
    const j = await diego(["task", "run", "-f", "-", "--json", "--rm"], { input: JSON.stringify(again) });
    expect(j.code).toBe(3);
    expect(JSON.parse(j.stdout)).toMatchObject({ task_guid: "cli-run-fail-json", state: "COMPLETED", failed: true, failure_reason: "Exited with status 7" });
    expect(await cluster.getTask("cli-run-fail-json")).toBeUndefined();
  });

  it("exits 1 naming the API's error when the task cannot be created", async () => {
    const body = JSON.stringify(task("cli-run-twice", { run: { path: "/bin/true" } }));
    expect((await diego(["task", "run", "-f", "-"], { input: body })).code).toBe(0);
    const again = await diego(["task", "run", "-f", "-"], { input: body });
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/^diego: TaskGuidAlreadyExists: /);
  });

  it("shows a spinner and the elapsed time in a terminal", async () => {
    const file = await taskFile("spin", task("cli-run-spin", { run: { path: "/bin/sleep", args: ["1"] } }));
    const r = await diegoInPty(["task", "run", "-f", file]);
    expect(r.code).toBe(0);
    // Redrawn in place: carriage return, clear line, a frame, the task and its elapsed time.
    const frames = r.stdout.match(/\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] cli-run-spin [A-Z]+( on \S+)?  [0-9]+\.[0-9]s/g) ?? [];
    expect(frames.length).toBeGreaterThan(3);
    expect(r.stdout).toMatch(/cli-run-spin RUNNING on /);
    // The line is cleared once, before the outcome: nothing follows it.
    expect(r.stdout).toMatch(/\r\x1b\[2Ktask cli-run-spin succeeded after [0-9]+\.[0-9]s\r\n$/);
  });
});

describe("tables in a terminal", () => {
  it("lists tasks with guid, domain, state, cell, outcome and age", async () => {
    await diego(["task", "run", "-f", "-"], { input: JSON.stringify(task("cli-table-fail", { run: { path: "/bin/sh", args: ["-c", "exit 2"] } }, { domain: "cli-table" })) });
    await diego(["task", "run", "-f", "-"], { input: JSON.stringify(task("cli-table-ok", { run: { path: "/bin/true" } }, { domain: "cli-table" })) });
    const r = await diegoInPty(["task", "list", "--domain", "cli-table"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\r\n").filter(Boolean);
    expect(lines[0]).toMatch(/^GUID +DOMAIN +STATE +CELL +OUTCOME +AGE$/);
    expect(lines[1]).toMatch(/^cli-table-fail +cli-table +COMPLETED +- +failed: Exited with status 2 +[0-9]+s$/);
    expect(lines[2]).toMatch(/^cli-table-ok +cli-table +COMPLETED +- +succeeded +[0-9]+s$/);
    expect(lines).toHaveLength(3);
  });

  it("lists the cells", async () => {
    const r = await diegoInPty(["cells"]);
    expect(r.code).toBe(0);
    const [header, row] = r.stdout.split("\r\n");
    expect(header).toMatch(/^CELL +ZONE +STACKS +TASKS +CONTAINERS FREE +MEMORY MB FREE +DISK MB FREE$/);
    expect(row).toMatch(new RegExp(`^${cluster.cells[0]!.cellId} +z1 +lucid64 +[0-9]+ +[0-9]+/64 +[0-9]+/4096 +[0-9]+/16384$`));
  });
});

describe("streams", () => {
  it("watch shows a created task's changes, one JSON line each", async () => {
    const child = spawnDiego(["task", "watch", "--domain", "cli-watch", "--json"]);
    const [stdout, stderr] = [collect(child.stdout!), collect(child.stderr!)];
    try {
      await waitFor(child.stderr!, stderr, /watching task changes at /);
      await diego(["task", "create", "-f", "-"], { input: JSON.stringify(task("cli-watched", { run: { path: "/bin/true" } }, { domain: "cli-watch" })) });
      await waitFor(child.stdout!, stdout, /"state":"COMPLETED"/);
      const events = stdout()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { event: string; task: { task_guid: string; state: string } });
      expect(events[0]).toMatchObject({ event: "task_created", task: { task_guid: "cli-watched", state: "PENDING" } });
      expect(events.map((e) => e.task.state)).toEqual(expect.arrayContaining(["PENDING", "CLAIMED", "RUNNING", "COMPLETED"]));
      expect(events.every((e) => e.task.task_guid === "cli-watched")).toBe(true);
    } finally {
      child.kill("SIGINT");
    }
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(0);
  });

  it("watch prints readable lines without --json", async () => {
    const child = spawnDiego(["task", "watch", "--domain", "cli-watch-text"]);
    const [stdout, stderr] = [collect(child.stdout!), collect(child.stderr!)];
    try {
      await waitFor(child.stderr!, stderr, /watching task changes at /);
      await diego(["task", "create", "-f", "-"], { input: JSON.stringify(task("cli-watched-text", { run: { path: "/bin/sh", args: ["-c", "exit 4"] } }, { domain: "cli-watch-text" })) });
      const [line] = await waitFor(child.stdout!, stdout, /.*COMPLETED.*\n/);
      expect(line).toMatch(/^[0-9:.]{12}  changed  cli-watched-text  COMPLETED  failed: Exited with status 4  domain=cli-watch-text\n$/);
      expect(stdout()).toMatch(/^[0-9:.]{12}  created  cli-watched-text  PENDING  domain=cli-watch-text$/m);
    } finally {
      child.kill("SIGINT");
    }
    await once(child, "exit");
  });

  it("logs -f shows a task's output lines", async () => {
    const child = spawnDiego(["task", "logs", "cli-log-guid", "-f"]);
    const [stdout, stderr] = [collect(child.stdout!), collect(child.stderr!)];
    try {
      await waitFor(child.stderr!, stderr, /reading the log lines of cli-log-guid/);
      const body = task("cli-logs", { run: { path: "/bin/sh", args: ["-c", "echo hello from the task; echo oops >&2"] } }, { log_guid: "cli-log-guid", log_source: "MY-SRC" });
      await diego(["task", "create", "-f", "-"], { input: JSON.stringify(body) });
      await waitFor(child.stdout!, stdout, /oops/);
      expect(stdout()).toMatch(/^[0-9:.]{12} \[MY-SRC\] OUT hello from the task$/m);
      expect(stdout()).toMatch(/^[0-9:.]{12} \[MY-SRC\] ERR oops$/m);
    } finally {
      child.kill("SIGINT");
    }
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(0);
  });
});

describe("logs without -f", () => {
  it("stops once no line has come for --idle", async () => {
    const started = Date.now();
    const r = await diego(["task", "logs", "cli-quiet-log-guid", "--idle", "500ms"]);
    expect(r).toMatchObject({ code: 0, stdout: "" });
    expect(r.stderr).toMatch(/reading the log lines of cli-quiet-log-guid at .* until none comes for 0\.5s/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
  });
});

describe("start-up", () => {
  // The user commands must not load the server code (NATS clients, containers): their import
  // graph, from the branch in main.ts, stays within src/cli/user, the duration parser and
  // eventsource-parser.
  it("imports nothing of the servers", async () => {
    const { readFile } = await import("node:fs/promises");
    const root = path.resolve(import.meta.dirname, "../..");
    const main = await readFile(path.join(root, "src/cli/main.ts"), "utf8");
    expect(main).toMatch(/await import\("\.\/user\/run-user-command\.js"\)/);
    // Before the branch, main.ts imports types only (erased at compile time).
    expect(main.match(/^import (?!type ).*$/gm) ?? []).toEqual([]);
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = await readFile(file, "utf8");
      for (const m of text.matchAll(/^import (?!type )[^;]*?from "([^"]+)"|import\("([^"]+)"\)/gm)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith(".")) await visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, ".ts")));
        else packages.add(spec.replace(/^node:.*/, "node:"));
      }
    };
    await visit(path.join(root, "src/cli/user/run-user-command.ts"));
    const outside = [...seen].map((f) => path.relative(root, f)).filter((f) => !f.startsWith("src/cli/user/"));
    expect(outside).toEqual(["src/duration/index.ts"]);
    expect([...packages].sort()).toEqual(["eventsource-parser", "node:"]);
  });
});

describe("auth headers", () => {
  let server: Server;
  let seen: IncomingHttpHeaders[] = [];
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "Content-Type": "application/json" }).end("[]");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("sends Basic from --auth-user/--auth-password and Bearer from DIEGO_AUTH_TOKEN; none by default", async () => {
    seen = [];
    expect((await diego(["cells", "--api", url, "--auth-user", "alice", "--auth-password", "s3cret:x"])).code).toBe(0);
    expect((await diego(["task", "list", "--json"], { env: { DIEGO_API: url, DIEGO_AUTH_TOKEN: "tok-123" } })).code).toBe(0);
    expect((await diego(["cells", "--api", url])).stdout).toBe("No cells.\n");
    expect(seen.map((h) => h.authorization)).toEqual([`Basic ${Buffer.from("alice:s3cret:x").toString("base64")}`, "Bearer tok-123", undefined]);
  });

  it("refuses a token together with a user", async () => {
    const r = await diego(["cells", "--api", url, "--auth-token", "t", "--auth-user", "u", "--auth-password", "p"]);
    expect(r).toMatchObject({ code: 2, stderr: "diego: give either --auth-token or --auth-user/--auth-password, not both\n" });
  });
});
