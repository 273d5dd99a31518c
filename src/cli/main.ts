import type { Logger } from "pino";
import type { Running } from "./commands.js";

async function main(): Promise<void> {
  // The user commands (task, cells) talk REST only: they never load the server code below.
  if (process.argv[2] === "task" || process.argv[2] === "lrp" || process.argv[2] === "cells") {
    const { runUserCommand } = await import("./user/run-user-command.js");
    // Exit at once: fetch's idle keep-alive sockets would hold the process a few seconds.
    process.exit(await runUserCommand(process.argv.slice(2), process.env));
  }
  const [{ createLogger }, { parseArgs, usage }, { InvalidSettingError }, { runCommand }, { NatsRefusedError }] = await Promise.all([
    import("./logger.js"),
    import("./parse-args.js"),
    import("./settings.js"),
    import("./commands.js"),
    import("../nats/index.js"),
  ]);
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`diego: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (parsed.kind === "help") {
    process.stdout.write(usage(parsed.topic));
    process.exit(0);
  }
  if (parsed.kind === "unknown") {
    process.stderr.write(`diego: unknown command '${parsed.command}'\n\n${usage()}`);
    process.exit(2);
  }
  const { command, settings } = parsed;
  const logger = createLogger(settings.logLevel, `diego-${command}`, settings.logFormat);
  let running: Running;
  try {
    running = await runCommand(parsed, logger);
  } catch (err) {
    // A setting the user got wrong, or credentials NATS refused, need only the message; anything
    // else is logged in full too.
    if (!(err instanceof InvalidSettingError || err instanceof NatsRefusedError)) logger.error({ err }, "failed to start");
    process.stderr.write(`diego ${command}: ${(err as Error).message}\n`);
    process.exit(err instanceof InvalidSettingError ? 2 : 1);
  }
  process.stdout.write(`${running.readyLine}\n`);
  installShutdown(running, logger);
}

function installShutdown(running: Running, logger: Logger): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), running.stopBudgetMs ?? 15_000);
    force.unref();
    running
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

void main();
