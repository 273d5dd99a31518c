import { describe, expect, it } from "vitest";
import { parseArgs, parseSettings } from "../../src/cli/parse-args.js";

// `diego up` keeps a NATS port the user chose even if it is taken, but moves off the default:
// the parser tells settings the user gave from defaults.

describe("diego's argument parser", () => {
  it("says which settings were given by flag or environment and which are defaults", () => {
    const byFlag = parseSettings("up", ["--nats-port", "4333"], {});
    expect(byFlag.settings.natsPort).toBe(4333);
    expect(byFlag.given.has("natsPort")).toBe(true);

    const byEnv = parseSettings("up", ["--listen=127.0.0.1:0"], { DIEGO_NATS_PORT: "4222" });
    expect(byEnv.settings.natsPort).toBe(4222);
    expect([...byEnv.given].sort()).toEqual(["listen", "natsPort"]);

    const defaults = parseSettings("up", [], {});
    expect(defaults.settings.natsPort).toBe(4222);
    expect(defaults.given.size).toBe(0);
  });

  it("refuses values outside a setting's choices or range, naming what is allowed", () => {
    expect(() => parseArgs(["cell", "--runtime", "docker"], {})).toThrow("--runtime must be one of runc, crun; got 'docker'");
    expect(() => parseArgs(["up", "--nats-port", "65536"], {})).toThrow("--nats-port must be at most 65535, got 65536");
    expect(() => parseArgs(["up"], { DIEGO_LOG_LEVEL: "verbose" })).toThrow("--log-level must be one of");
    // Zero would stop the system rather than speed it up: every cell dead at once, a leader
    // lock lost as soon as taken, a cell with no room.
    expect(() => parseArgs(["up", "--cell-ttl", "0s"], {})).toThrow("--cell-ttl must be at least 1ms, got '0s'");
    expect(() => parseArgs(["auctioneer", "--lock-ttl=0"], {})).toThrow("--lock-ttl must be at least 1ms, got '0'");
    expect(() => parseArgs(["cell", "--containers", "0"], {})).toThrow("--containers must be at least 1, got 0");
    expect(parseSettings("up", ["--cell-ttl", "1ms", "--memory-mb", "0", "--placement-retries", "0"], {}).settings).toMatchObject({ cellTtl: 1, memoryMb: 0, placementRetries: 0 });
    expect(parseSettings("up", ["--nats-port", "65535", "--log-format", "text"], {}).settings).toMatchObject({ natsPort: 65535, logFormat: "text" });
  });
});
