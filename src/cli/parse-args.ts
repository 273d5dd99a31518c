import { defaultValue, type SettingTable } from "../settings/index.js";
import { defaultText, parseSetting } from "./parse-setting.js";
import { COMMAND_SETTINGS, InvalidSettingError, isServerCommand, type CommandSettings, type ServerCommand } from "./settings.js";

/** A server command's typed settings, and which of them the user gave (the rest are defaults). */
export interface ParsedSettings<C extends ServerCommand> {
  settings: CommandSettings<C>;
  /** The settings given by a flag or an environment variable. */
  given: ReadonlySet<keyof CommandSettings<C>>;
}

export type ParsedRun = { [C in ServerCommand]: { kind: "run"; command: C } & ParsedSettings<C> }[ServerCommand];

export type ParsedCommand = ParsedRun | { kind: "help"; topic?: string } | { kind: "unknown"; command: string };

/** `diego <command> [--flag value | --flag=value]...`; flags win over environment variables. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const [first = "help", ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") return { kind: "help" };
  if (helpAsked(rest)) return { kind: "help", topic: first };
  if (!isServerCommand(first)) return { kind: "unknown", command: first };
  return { kind: "run", command: first, ...parseSettings(first, rest, env) } as ParsedRun;
}

/** --help or -h where a flag (not a flag's value) may stand. */
function helpAsked(args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") return true;
    if (!arg.startsWith("--")) return false;
    if (!arg.includes("=")) i++;
  }
  return false;
}

/** The flags of one server command, against its settings table. */
export function parseSettings<C extends ServerCommand>(command: C, args: string[], env: NodeJS.ProcessEnv): ParsedSettings<C> {
  const table: SettingTable = COMMAND_SETTINGS[command];
  const byFlag = new Map(Object.entries(table).map(([key, spec]) => [spec.flag, key]));
  const raw = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new InvalidSettingError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const key = byFlag.get(name);
    if (key === undefined) throw new InvalidSettingError(`unknown flag --${name} for 'diego ${command}' (see diego ${command} --help)`);
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new InvalidSettingError(`--${name} needs a value`);
    raw.set(key, value);
  }
  const settings: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    const text = raw.get(key) ?? env[spec.env];
    if (text !== undefined) raw.set(key, text);
    settings[key] = text === undefined ? defaultValue(spec) : parseSetting(spec, text);
  }
  return { settings: settings as CommandSettings<C>, given: new Set(raw.keys()) as ReadonlySet<keyof CommandSettings<C>> };
}

export function usage(command?: string): string {
  const commands = [
    ["up", "start everything on this machine: nats-server, receptor, auctioneer, dispatcher, converger, one cell, router"],
    ["receptor", "the Task API (gRPC, Connect, REST) against --nats"],
    ["auctioneer", "places pending tasks on cells (one active, others standby)"],
    ["dispatcher", "fires completion callbacks"],
    ["converger", "enforces timeouts, reaps and re-auctions tasks (one active, others standby)"],
    ["cell", "a cell-agent: bids for tasks and runs them in OCI containers"],
    ["router", "HTTP reverse proxy to LRP instances by Host header; registers routes for a gorouter"],
    ["task", "create, list, watch, run tasks and follow their logs through the API ('diego task --help')"],
    ["lrp", "desire, list, scale, kill and delete long-running processes through the API ('diego lrp --help')"],
    ["cells", "list the live cells through the API"],
  ];
  if (command && isServerCommand(command)) {
    const lines = Object.values(COMMAND_SETTINGS[command] as SettingTable).map(
      (d) => `  --${d.flag.padEnd(24)} ${d.help} [env ${d.env}, default ${JSON.stringify(defaultText(d))}]`,
    );
    return `usage: diego ${command} [flags]\n\n${lines.join("\n")}\n`;
  }
  return `usage: diego <command> [flags]\n\ncommands:\n${commands
    .map(([c, h]) => `  ${c!.padEnd(12)} ${h}`)
    .join("\n")}\n\nRun 'diego <command> --help' for its flags.\n`;
}
