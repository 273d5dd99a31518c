import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CONVERGER_DEFAULTS } from "../../src/converger/index.js";
import { DISPATCHER_DEFAULTS } from "../../src/dispatcher/index.js";
import { DEFAULT_CRASH_POLICY } from "../../src/model/index.js";
import { crashPolicyFrom } from "../../src/store/index.js";
import { parseSettings, usage } from "../../src/cli/parse-args.js";
import { configurationTable, withConfigurationTable } from "../../src/cli/settings-doc.js";

// One table per component gives the flags, the environment variables, the typed defaults, the
// --help text and the README's configuration table.

describe("the settings tables", () => {
  it("are what the README's configuration table says (regenerate it with npm run docs:settings)", async () => {
    const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    expect(withConfigurationTable(readme)).toBe(readme);
    expect(readme).toContain("| `--nats-port` | `DIEGO_NATS_PORT` | `4222` | up |");
    expect(readme).toContain("| `--runtime` | `DIEGO_RUNTIME` | `crun` | up, cell |");
    expect(readme).toContain("| `--api` | `DIEGO_API` | `http://127.0.0.1:8888` | task, cells |");
  });

  it("list every setting once with the commands that read it", () => {
    const rows = configurationTable().split("\n").slice(2);
    const flags = rows.map((r) => r.split(" | ")[0]!.replace("| ", "") + " " + r.split(" | ")[3]);
    expect(new Set(flags).size).toBe(flags.length);
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--lock-ttl` \| `DIEGO_LOCK_TTL` \| `6s` \| up, auctioneer, converger \|/));
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--replicas` \| `DIEGO_REPLICAS` \| `1` \| receptor, auctioneer, converger, dispatcher, cell \|/));
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--metrics-listen` \| `DIEGO_METRICS_LISTEN` \| `""` \| auctioneer, converger, dispatcher, cell \|/));
  });

  it("give each command typed defaults: milliseconds, whole numbers, lists and choices", () => {
    const { settings, given } = parseSettings("cell", [], {});
    expect(given.size).toBe(0);
    expect(settings).toMatchObject({ stacks: ["lucid64"], rootfs: [], containers: 256, pidsLimit: 1024, runtime: "crun", maxStarting: 0, cellTtl: 10_000, natsWait: 0, replicas: 1 });
    expect(parseSettings("receptor", [], {}).settings).toMatchObject({ listen: "127.0.0.1:8888", corsOrigins: [], headersTimeout: 60_000, requestTimeout: 300_000 });
    expect(parseSettings("cell", ["--stacks", "a, b,"], { DIEGO_DNS_SERVERS: "10.0.0.2" }).settings).toMatchObject({ stacks: ["a", "b"], dnsServers: ["10.0.0.2"] });
  });

  it("are where the converger and dispatcher take the defaults of options left out", () => {
    const up = parseSettings("up", [], {}).settings;
    expect(CONVERGER_DEFAULTS).toEqual({
      convergeInterval: up.convergeInterval,
      kickInterval: 30_000,
      pendingTimeout: 1_800_000,
      claimTimeout: 300_000,
      lockTtl: 6_000,
      completedTtl: 120_000,
      callbackRetryInterval: 30_000,
      cellTtl: 10_000,
      staleUnclaimedTimeout: 30_000,
      crashImmediateRestarts: 2,
      crashBackoff: 30_000,
      crashBackoffMax: 960_000,
      crashMaxRestarts: 200,
      crashResetAfter: 300_000,
      evacuationTimeout: 600_000,
    });
    // The defaults are 2015's crash policy; flags change it.
    expect(crashPolicyFrom(CONVERGER_DEFAULTS)).toEqual(DEFAULT_CRASH_POLICY);
    const scaled = parseSettings("converger", ["--crash-backoff", "2s", "--crash-immediate-restarts", "0"], { DIEGO_CRASH_MAX_RESTARTS: "5" }).settings;
    expect(crashPolicyFrom(scaled)).toEqual({ ...DEFAULT_CRASH_POLICY, immediateRestarts: 1, minBackoffMs: 2_000, maxRestarts: 5 });
    expect(DISPATCHER_DEFAULTS).toEqual({ callbackTimeout: 10_000, callbackConcurrency: 100, completedTtl: up.completedTtl, callbackRetryInterval: up.callbackRetryInterval });
  });

  it("are what diego <command> --help prints", () => {
    const help = usage("up");
    expect(help).toContain('  --nats-port                client port of the embedded nats-server (0 = any free port) [env DIEGO_NATS_PORT, default "4222"]');
    expect(help).toContain('[env DIEGO_STACKS, default "lucid64"]');
    expect(help).not.toContain("--metrics-listen");
    expect(usage("converger")).toContain('  --pending-timeout          PENDING longer than this fails: not started within time limit [env DIEGO_PENDING_TIMEOUT, default "30m"]');
  });

  it("refuse a flag that belongs to another command, naming it", () => {
    expect(() => parseSettings("receptor", ["--stacks", "x"], {})).toThrow("unknown flag --stacks for 'diego receptor' (see diego receptor --help)");
    expect(() => parseSettings("dispatcher", ["--callback-concurrency", "many"], {})).toThrow("--callback-concurrency must be a whole number, got 'many'");
    expect(() => parseSettings("converger", [], { DIEGO_KICK_INTERVAL: "soon" })).toThrow("--kick-interval: invalid duration 'soon'");
  });
});
