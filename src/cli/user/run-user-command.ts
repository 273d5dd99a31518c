import { createApiClient } from "./api-client.js";
import { cells } from "./cells-command.js";
import type { Context, UserCommand } from "./context.js";
import { exitCodeOf, UsageError } from "./errors.js";
import { LRP_COMMANDS } from "./lrp-commands.js";
import { DEFAULT_API, GLOBAL_OPTIONS, globalSettings, parseLine } from "./options.js";
import { cancel, create, del, get, list } from "./task-crud.js";
import { run } from "./task-run.js";
import { logs, watch } from "./task-streams.js";

// `diego task ...` and `diego cells`: the Task API's REST routes for people and scripts. This
// module and its imports must stay free of the server code, so that the CLI starts fast.

export const USER_COMMANDS = ["task", "lrp", "cells"];

const TASK_COMMANDS: Record<string, UserCommand> = { create, get, list, cancel, delete: del, watch, logs, run };
/** The command groups: `diego task ...`, `diego lrp ...`. */
const GROUPS: Record<string, Record<string, UserCommand>> = { task: TASK_COMMANDS, lrp: LRP_COMMANDS };

const GLOBAL_HELP = `global flags:
  --api URL              the receptor [env DIEGO_API, default ${DEFAULT_API}]
  --auth-user USER       Basic auth user, with --auth-password [env DIEGO_AUTH_USER]
  --auth-password PASS   Basic auth password [env DIEGO_AUTH_PASSWORD]
  --auth-token TOKEN     Bearer token, instead of --auth-user [env DIEGO_AUTH_TOKEN]
  --json                 machine-readable output on stdout: one JSON document (JSON lines for watch and logs)
  -h, --help             this help`;

function groupHelp(group = "task"): string {
  const lines = Object.values(GROUPS[group] ?? TASK_COMMANDS).map((c) => `  ${c.synopsis}`);
  return `usage: diego ${group} <command> [flags]\n\ncommands:\n${lines.join("\n")}\n\n${GLOBAL_HELP}\n\nRun 'diego ${group} <command> --help' for one command. Docs: docs/cli.md\n`;
}

function commandHelp(c: UserCommand): string {
  const own = (c.flagHelp ?? []).map(([flag, meaning]) => `  ${flag.padEnd(22)} ${meaning}`);
  return `usage: ${c.synopsis}\n\n${wrap(c.help, 78)}\n\n${own.length ? `flags:\n${own.join("\n")}\n\n` : ""}${GLOBAL_HELP}\n`;
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join("\n");
}

/** Runs `diego task ...`, `diego lrp ...` or `diego cells ...`; resolves to the exit code. */
export async function runUserCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const { name, command, args } = pick(argv);
    if (!command) {
      process.stdout.write(groupHelp(name));
      return 0;
    }
    const { values, positionals } = parseLine(args, command.options, name);
    if (values.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    const settings = globalSettings(values, env);
    const ctx: Context = {
      client: createApiClient(settings.api),
      json: settings.json,
      stdout: process.stdout,
      stderr: process.stderr,
      stdin: process.stdin,
      signal: interrupt.signal,
      values,
      positionals,
    };
    return await command.run(ctx);
  } catch (err) {
    process.stderr.write(`diego: ${(err as Error).message}\n`);
    const group = argv[0] === "lrp" ? "lrp" : "task";
    if (err instanceof UsageError && /^'diego (task|lrp)' needs|^unknown command/.test(err.message)) process.stderr.write(`\n${groupHelp(group)}`);
    return exitCodeOf(err);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * The command named by argv; undefined for `diego task [--help]`. Global flags may come before the
 * task command too: `diego task --api URL list`.
 */
function pick(argv: string[]): { name: string; command?: UserCommand; args: string[] } {
  if (argv[0] === "cells") return { name: "cells", command: cells, args: argv.slice(1) };
  const group = argv[0] === "lrp" ? "lrp" : "task";
  let at = 1;
  while (at < argv.length && argv[at]!.startsWith("-") && argv[at] !== "-h" && argv[at] !== "--help") {
    const flag = argv[at]!.replace(/^--/, "");
    at += GLOBAL_OPTIONS[flag]?.type === "string" ? 2 : 1;
  }
  const sub = argv[at];
  if (sub === "--help" || sub === "-h" || sub === "help") return { name: group, args: [] };
  if (sub === undefined) throw new UsageError(`'diego ${group}' needs a command`);
  const command = GROUPS[group]![sub];
  if (!command) throw new UsageError(`unknown command '${group} ${sub}'`);
  return { name: `${group} ${sub}`, command, args: [...argv.slice(1, at), ...argv.slice(at + 1)] };
}
