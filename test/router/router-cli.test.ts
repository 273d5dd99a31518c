import http from "node:http";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand } from "../../src/cli/commands.js";
import { parseArgs, type ParsedRun } from "../../src/cli/parse-args.js";
import { RouterListenError, startRouter } from "../../src/router/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";

// `diego router` as the CLI starts it: flags parsed against its settings table, then run.

let nats: TestNats;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.dispose();
});

const run = (args: string[]) => runCommand(parseArgs(["router", ...args], {}) as ParsedRun, pino({ level: "silent" }));

function status(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
}

describe("diego router", () => {
  it("starts on --router-listen against --nats and answers an unknown host with 404", async () => {
    const r = await run(["--nats", nats.url, "--router-listen", "127.0.0.1:0", "--router-register", "off"]);
    try {
      const m = /^diego router ready on 127\.0\.0\.1:(\d+) \(nats /.exec(r.readyLine);
      expect(m).not.toBeNull();
      expect(await status(Number(m![1]), "nothing.here")).toBe(404);
    } finally {
      await r.stop();
    }
  });

  it("refuses a --router-listen that is not HOST:PORT, naming the flag", async () => {
    await expect(run(["--nats", nats.url, "--router-listen", "8080"])).rejects.toThrow(/--router-listen must be HOST:PORT/);
    expect(() => parseArgs(["router", "--router-register", "maybe"], {})).toThrow(/router-register/);
    expect(() => parseArgs(["router", "--router-processes", "0"], {})).toThrow(/router-processes/);
    // `up` runs its router inside its own process.
    expect(() => parseArgs(["up", "--router-processes", "2"], {})).toThrow(/router-processes/);
  });

  it("takes a free port when its port is taken only if told to (diego up with the default address)", async () => {
    const first = await startRouter({ natsUrl: nats.url, port: 0, register: false });
    try {
      await expect(startRouter({ natsUrl: nats.url, port: first.port, register: false })).rejects.toBeInstanceOf(RouterListenError);
      const second = await startRouter({ natsUrl: nats.url, port: first.port, register: false, freePortIfTaken: true });
      expect(second.port).not.toBe(first.port);
      await second.stop();
    } finally {
      await first.stop();
    }
  });
});
