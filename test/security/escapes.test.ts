import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBusyboxRootfs } from "../../cell-agent/src/rootfs/index.js";
import { readResultFile } from "../../cell-agent/src/executor/result-file.js";
import { readSmallFileInRootfs, removeTree } from "../../cell-agent/src/sandbox/index.js";
import { makeTgz } from "../executor/archives.js";
import { act, execute, type ActionInit, startHarness, startHttpServer, taskOf, type Harness, type TestHttpServer } from "../executor/harness.js";
import { exchangeProgram } from "./exchange-elf.js";

// Issue 11's host escapes, each run as the task that broke out of the container: the cell
// must never act on the host through a path the container can change.

const HOST_SECRET = "HOST SECRET";
const CONTAINER_DATA = "container data\n";
// The old cell lost this race in about one try of three (the issue: one of six at least).
const ESCAPE_2_ROUNDS = 6;

let h: Harness;
let server: TestHttpServer;
let tools: Buffer;
let payload: Buffer;
let noEtcRootfs: string;
/** Root filesystems of the sandboxes whose /gated.tgz download waits for their attacker. */
const gated = new Map<string, string>();

beforeAll(async () => {
  [h, tools, payload] = await Promise.all([
    startHarness(),
    // xchg ends soon when nothing stops it; xchg-long runs until its container is destroyed.
    makeTgz({ xchg: exchangeProgram(150_000), "xchg-long": exchangeProgram(50_000_000) }),
    makeTgz({ "hello.txt": "hello from the download\n" }),
  ]);
  noEtcRootfs = await ensureBusyboxRootfs(path.join(h.dir, "no-etc-rootfs"));
  await rm(path.join(noEtcRootfs, "etc"), { recursive: true });
  server = await startHttpServer((req, _body, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/tools.tgz") return res.end(tools);
    if (url.pathname === "/gated.tgz") {
      // Hold the body until the task's attacker is in place (or has seen there is nothing to attack).
      const rootfs = gated.get(url.searchParams.get("sandbox") ?? "");
      const round = url.searchParams.get("round") ?? "0";
      if (!rootfs) return res.writeHead(404).end();
      void writeFile(path.join(rootfs, `go-${round}`), "")
        .then(() => waitForFile(path.join(rootfs, `attack-ready-${round}`)))
        .then(() => res.end(payload), () => res.destroy());
      return;
    }
    if (url.pathname === "/ok") return res.writeHead(201).end();
    res.writeHead(404).end();
  });
});
afterAll(async () => {
  await server?.close();
  await h?.close();
});

/** A host directory the attacks aim at, with files they would delete or leak. */
async function canaryDir(files: Record<string, string> = {}): Promise<{ dir: string; listing: () => Promise<Record<string, string>> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "host-canary-"));
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return {
    dir,
    listing: async () => {
      const out: Record<string, string> = {};
      for (const name of (await readdir(dir)).sort()) out[name] = await readFile(path.join(dir, name), "utf8");
      return out;
    },
  };
}

/** Resolves once path has been seen as a symlink: the exchange program is at work. */
async function swapped(p: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if ((await lstat(p).catch(() => undefined))?.isSymbolicLink()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`${p} was never swapped`);
}

async function waitForFile(file: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await access(file).then(() => true, () => false)) return;
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The attacker's loop for download `round`: runs `attack "$d"` on the first download staging
 * directory it sees that no earlier round attacked (the cell used to make
 * /.diego-download-XXXXXX), or gives up once the cell has started the download (the server
 * wrote /go-N) and there is still none. Either way /attack-ready-N tells the server to send the
 * archive. /go-N is checked first: a stage made before the request is seen.
 */
function stagingAttacker(round: number, attack: string): string {
  return `
    seen=$(cat /attacked 2>/dev/null)
    while :; do
      go=; [ -e /go-${round} ] && go=1
      for d in /.diego-download-*; do
        case "$seen" in *"$d"*) continue;; esac
        if [ -d "$d" ] && [ ! -L "$d" ]; then echo "$d" >> /attacked; ${attack}; fi
      done
      if [ -n "$go" ]; then touch /attack-ready-${round}; exit 0; fi
    done`;
}

describe.each([
  { mode: "unprivileged", privileged: false },
  { mode: "privileged", privileged: true },
])("host escapes through container files ($mode)", ({ privileged }) => {
  it("escape 1: a download never writes through a staging path the task swapped for a symlink to a host directory", async () => {
    const canary = await canaryDir();
    try {
      const sandbox = await h.sandbox({ privileged });
      gated.set(sandbox.id, sandbox.rootfsPath);
      const attack = `mv "$d" /moved && ln -s ${canary.dir} "$d" && touch /attack-ready-0 && exit 0`;
      const { outcome } = await execute(
        h,
        taskOf(
          act.serial([
            act.parallel([act.download({ from: `${server.url}/gated.tgz?sandbox=${sandbox.id}`, to: "/app" }), act.sh(stagingAttacker(0, attack))]),
            act.sh("cat /app/hello.txt"),
          ]),
        ),
        { sandbox },
      );
      expect(await canary.listing()).toEqual({});
      expect(outcome).toEqual({ failed: false, failureReason: "", result: "" });
    } finally {
      await rm(canary.dir, { recursive: true, force: true });
    }
  });

  it("escape 2: cleaning up after a download never deletes host files, however the task swaps directories", async () => {
    const files = { archive: "keep", busybox: "keep", "other-file": "keep" };
    const canary = await canaryDir(files);
    try {
      const sandbox = await h.sandbox({ privileged });
      gated.set(sandbox.id, sandbox.rootfsPath);
      // Each round swaps the staging directory with a symlink to the canary, atomically, as fast
      // as it goes, until the cell has removed one of them (the unpacking may fail meanwhile).
      const round = (n: number): ActionInit =>
        act.parallel([
          act.try(act.download({ from: `${server.url}/gated.tgz?sandbox=${sandbox.id}&round=${n}`, to: `/app-${n}` })),
          act.sh(stagingAttacker(n, `ln -s ${canary.dir} /l-${n}; touch /attack-ready-${n}; exec /opt/xchg "$d" /l-${n}`)),
        ]);
      const rounds = Array.from({ length: ESCAPE_2_ROUNDS }, (_, n) => round(n));
      const { outcome } = await execute(
        h,
        taskOf(
          act.serial([
            act.download({ from: `${server.url}/tools.tgz`, to: "/opt" }),
            act.sh("chmod 755 /opt/xchg"),
            ...rounds,
          ]),
        ),
        { sandbox },
      );
      await sandbox.destroy();
      expect(await canary.listing()).toEqual(files);
      expect(outcome).toEqual({ failed: false, failureReason: "", result: "" });
    } finally {
      await rm(canary.dir, { recursive: true, force: true });
    }
  });

  it("result_file: never the content of a host file, while the task swaps its directory with a symlink to the host", async () => {
    const canary = await canaryDir({ out: HOST_SECRET });
    try {
      const sandbox = await h.sandbox({ privileged });
      await startExchanger(sandbox, canary.dir);
      const results: string[] = [];
      for (let i = 0; i < 3; i++) {
        // Two processes: the container stays up between them, and so does the attacker.
        const { outcome } = await execute(h, taskOf(act.serial([act.sh("true"), act.sh("true")]), { resultFile: "/d/out" }), { sandbox });
        results.push(outcome.failed ? outcome.failureReason : outcome.result);
      }
      // The read executeTask makes, many more times, watching the swaps happen.
      const seen = { link: 0, dir: 0 };
      for (let i = 0; i < 1000; i++) {
        results.push(await readResultFile(sandbox.rootfsPath, "/d/out").catch(() => "failed"));
        const d = await lstat(path.join(sandbox.rootfsPath, "d")).catch(() => undefined);
        if (d) seen[d.isSymbolicLink() ? "link" : "dir"]++;
      }
      await sandbox.destroy();
      expect(results.filter((r) => r.includes(HOST_SECRET))).toEqual([]);
      expect(results).toContain(CONTAINER_DATA);
      expect(seen.link).toBeGreaterThan(0);
      expect(seen.dir).toBeGreaterThan(0);
    } finally {
      await rm(canary.dir, { recursive: true, force: true });
    }
  });

  const UPLOAD_ROUNDS = 80;
  it("upload: never POSTs a host file, while the task swaps its directory with a symlink to the host", async () => {
    const canary = await canaryDir({ out: HOST_SECRET });
    try {
      const sandbox = await h.sandbox({ privileged });
      await startExchanger(sandbox, canary.dir);
      const before = server.requests.length;
      // Enough rounds that the swapper, which a loaded machine may starve for a while, meets some.
      const uploads = Array.from({ length: UPLOAD_ROUNDS }, () => act.try(act.upload({ from: "/d/out", to: `${server.url}/ok` })));
      const { outcome } = await execute(h, taskOf(act.serial(uploads)), { sandbox });
      await sandbox.destroy();
      expect(outcome.failed).toBe(false);
      const bodies = server.requests.slice(before).map((r) => r.body.toString());
      expect(bodies.filter((b) => b.includes(HOST_SECRET))).toEqual([]);
      expect(bodies).toContain(CONTAINER_DATA);
      expect(bodies.length).toBeLessThan(UPLOAD_ROUNDS); // some reads met the symlink and were refused
    } finally {
      await rm(canary.dir, { recursive: true, force: true });
    }
  });

  it("user names: /etc/passwd is never read from the host, while the task swaps /etc with a symlink to the host", async () => {
    const canary = await canaryDir({ passwd: "evil:x:4242:4242::/:/bin/sh\n", group: "" });
    try {
      // overlayfs (without redirect_dir) renames only directories of the upper layer: a root
      // filesystem without /etc lets the task make its own and swap it.
      const sandbox = await h.runtime.create({
        id: `no-etc-${randomBytes(6).toString("hex")}`,
        layers: [noEtcRootfs],
        env: [],
        privileged,
        limits: { memoryMb: 0, cpuWeight: 0, diskMb: 0, pids: 0 },
      });
      try {
        await startExchanger(sandbox, canary.dir, "/etc");
        const ran: string[] = [];
        for (let i = 0; i < 30; i++) {
          const { outcome, received } = await execute(h, taskOf(act.sh("id -u", { user: "evil" })), { sandbox });
          if (!outcome.failed) ran.push(received.texts().join(" "));
        }
        expect(ran).toEqual([]);
        // The read the sandbox makes for each of them, many more times, watching the swaps happen.
        const leaked: string[] = [];
        const seen = { link: 0, dir: 0 };
        for (let i = 0; i < 1000; i++) {
          const passwd = await readSmallFileInRootfs(sandbox.rootfsPath, "/etc/passwd");
          if (passwd.includes("evil")) leaked.push(passwd);
          const etc = await lstat(path.join(sandbox.rootfsPath, "etc")).catch(() => undefined);
          if (etc) seen[etc.isSymbolicLink() ? "link" : "dir"]++;
        }
        expect(leaked).toEqual([]);
        expect(seen.link).toBeGreaterThan(0);
        expect(seen.dir).toBeGreaterThan(0);
      } finally {
        await sandbox.destroy();
      }
    } finally {
      await rm(canary.dir, { recursive: true, force: true });
    }
  });
});

/**
 * Sets up /d (container data in /d/out) and /l (a symlink to the host directory), then leaves
 * the exchange program swapping /l with /d (or with dir) in the background.
 */
async function startExchanger(sandbox: Awaited<ReturnType<Harness["sandbox"]>>, hostDir: string, dir = "/d"): Promise<void> {
  const { outcome } = await execute(
    h,
    taskOf(
      act.serial([
        act.download({ from: `${server.url}/tools.tgz`, to: "/opt" }),
        act.sh(
          `mkdir -p /d ${dir} && printf '${CONTAINER_DATA.trim()}\\n' > /d/out && ln -s ${hostDir} /l && chmod 755 /opt/xchg-long && ` +
            `{ /opt/xchg-long ${dir} /l & } </dev/null >/dev/null 2>&1`,
        ),
      ]),
    ),
    { sandbox },
  );
  expect(outcome.failed).toBe(false);
}

describe("removing a container's files after it ran", () => {
  it("removes a deep and wide tree completely (it climbs back through '..', holding two fds at any depth)", async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), "remove-tree-"));
    try {
      // Built by fd like a task would (deeper than PATH_MAX allows a path-based rm -r to go).
      let dir = await open(base, "r");
      for (let level = 0; level < 600; level++) {
        await writeFile(`/proc/self/fd/${dir.fd}/file`, "x");
        if (level % 50 === 0) for (let k = 0; k < 3; k++) await mkdir(`/proc/self/fd/${dir.fd}/side-${k}/inner`, { recursive: true });
        await mkdir(`/proc/self/fd/${dir.fd}/${"d".repeat(20)}`);
        const next = await open(`/proc/self/fd/${dir.fd}/${"d".repeat(20)}`, "r");
        await dir.close();
        dir = next;
      }
      await dir.close();
      await removeTree(base);
      await expect(access(base)).rejects.toThrow();
    } finally {
      await rm(base, { recursive: true, force: true }).catch(() => undefined);
    }
  });

  it("never deletes host files while the tree's directories are swapped with symlinks to the host", async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), "remove-tree-"));
    const program = path.join(base, "xchg");
    await writeFile(program, exchangeProgram(2_000_000), { mode: 0o755 });
    const files = { a: "keep", b: "keep", c: "keep" };
    const canary = await canaryDir(files);
    try {
      for (let round = 0; round < 20; round++) {
        const tree = path.join(base, `tree-${round}`);
        await mkdir(path.join(tree, "upper", "sub"), { recursive: true });
        for (const name of Object.keys(files)) await writeFile(path.join(tree, "upper", "sub", name), "container");
        await symlink(canary.dir, path.join(tree, "upper", "l"));
        // The attacker swaps upper/sub and upper/l until one of them is gone.
        const attacker = spawn(program, [path.join(tree, "upper", "sub"), path.join(tree, "upper", "l")], { stdio: "ignore" });
        const exited = new Promise((resolve) => attacker.once("exit", resolve));
        try {
          await swapped(path.join(tree, "upper", "sub"));
          await removeTree(tree);
        } finally {
          attacker.kill("SIGKILL");
          await exited;
        }
        await expect(access(tree)).rejects.toThrow();
        expect(await canary.listing()).toEqual(files);
      }
    } finally {
      await rm(canary.dir, { recursive: true, force: true });
      await rm(base, { recursive: true, force: true });
    }
  });
});
