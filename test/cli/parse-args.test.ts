import { describe, expect, it } from "vitest";
import { parseArgs } from "../../src/cli/parse-args.js";

// `diego up` keeps a NATS port the user chose even if it is taken, but moves off the default:
// the parser tells settings the user gave from defaults.

describe("diego's argument parser", () => {
  it("says which settings were given by flag or environment and which are defaults", () => {
    const byFlag = parseArgs(["up", "--nats-port", "4333"], {});
    expect(byFlag.settings.natsPort).toBe(4333);
    expect(byFlag.given.has("natsPort")).toBe(true);

    const byEnv = parseArgs(["up", "--listen=127.0.0.1:0"], { DIEGO_NATS_PORT: "4222" });
    expect(byEnv.settings.natsPort).toBe(4222);
    expect([...byEnv.given].sort()).toEqual(["listen", "natsPort"]);

    const defaults = parseArgs(["up"], {});
    expect(defaults.settings.natsPort).toBe(4222);
    expect(defaults.given.size).toBe(0);
  });
});
