import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createLogFormatter } from "../../src/cli/log-format.js";
import { DIEGO_BIN } from "../fixtures/receptor.js";
import { freePort } from "../fixtures/ports.js";

/** What a real pino logger writes for one call, as the CLI's loggers are configured. */
function pinoLine(log: (logger: pino.Logger) => void): string {
  let line = "";
  const logger = pino({ name: "diego-up", base: { pid: 42 } }, { write: (l: string) => void (line = l) });
  log(logger);
  return line;
}

describe("the text log format", () => {
  const formatLogLine = createLogFormatter("diego-up");

  it("writes a pino line as time, level, component, message and the other fields", () => {
    const line = pinoLine((l) => l.child({ component: "receptor" }).info({ address: "127.0.0.1:8888", tasks: 3, note: "two words", cells: ["a"] }, "receptor listening"));
    const time = new Date(JSON.parse(line).time as number).toISOString().slice(11, 23);
    expect(formatLogLine(line)).toBe(`${time} INFO  receptor: receptor listening address=127.0.0.1:8888 tasks=3 note="two words" cells=["a"]\n`);
  });

  it("names the process when there is no component, and puts an error's stack on indented lines", () => {
    const err = new Error("boom");
    const text = formatLogLine(pinoLine((l) => l.error({ err }, "failed to start")));
    const [first, ...rest] = text.trimEnd().split("\n");
    expect(first).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR diego-up: failed to start$/);
    expect(rest[0]).toBe("    Error: boom");
    expect(rest.length).toBeGreaterThan(1);
    expect(rest.every((l) => l.startsWith("    "))).toBe(true);
  });

  it("passes a line that is not JSON through unchanged", () => {
    expect(formatLogLine("plain words")).toBe("plain words\n");
  });
});

describe("diego's log settings", () => {
  it("logs text when asked and names the NATS URL it could not reach", async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const run = promisify(execFile)(process.execPath, [DIEGO_BIN, "receptor", "--nats", url, "--nats-wait", "1ms", "--listen", "127.0.0.1:0", "--log-format", "text"]);
    const failed = await run.then(() => undefined, (err: { code: number; stderr: string }) => err);
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR diego-receptor: failed to start\n {4}NatsUnreachableError: cannot connect to NATS at /m);
    expect(failed?.stderr).toContain(`diego receptor: cannot connect to NATS at ${url}: connection refused\n`);
  });

  it("refuses a log level or format it does not know, naming the choices, before starting anything", async () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      promisify(execFile)(process.execPath, [DIEGO_BIN, ...args], { env: { ...process.env, ...env } }).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
    const level = await run(["receptor", "--log-level", "loud"]);
    expect(level?.code).toBe(2);
    expect(level?.stderr).toBe("diego: --log-level must be one of trace, debug, info, warn, error, fatal, silent; got 'loud'\n");
    const format = await run(["up"], { DIEGO_LOG_FORMAT: "xml" });
    expect(format?.stderr).toBe("diego: --log-format must be one of auto, json, text; got 'xml'\n");
    // Settings checked when a command starts get the same treatment: one line, exit 2.
    const noNats = await run(["receptor"], { DIEGO_NATS_URL: "" });
    expect(noNats?.code).toBe(2);
    expect(noNats?.stderr).toBe("diego receptor: --nats (or DIEGO_NATS_URL) is required, e.g. nats://127.0.0.1:4222\n");
  });
});
