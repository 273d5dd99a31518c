import { InvalidSettingError, parseSetting, SETTINGS, type Settings } from "./settings.js";

export interface ParsedCommand {
  command: string;
  settings: Settings;
  /** The settings given by a flag or an environment variable (the rest are defaults). */
  given: ReadonlySet<string>;
}

/** `diego <command> [--flag value | --flag=value]...`; flags win over environment variables. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const [first = "help", ...rest] = argv;
  if (first === "--help" || first === "-h") return { command: "help", settings: {}, given: new Set() };
  const command = first;
  const defs = SETTINGS.filter((d) => d.for.includes(command));
  const given = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === "--help" || arg === "-h") return { command: "help", settings: { topic: command }, given: new Set() };
    if (!arg.startsWith("--")) throw new InvalidSettingError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const def = defs.find((d) => d.flag === name);
    if (!def) throw new InvalidSettingError(`unknown flag --${name} for 'diego ${command}' (see diego ${command} --help)`);
    const value = eq > 0 ? arg.slice(eq + 1) : rest[++i];
    if (value === undefined) throw new InvalidSettingError(`--${name} needs a value`);
    given.set(def.key, value);
  }
  const settings: Settings = {};
  for (const def of defs) {
    const raw = given.get(def.key) ?? env[def.env];
    if (raw !== undefined) given.set(def.key, raw);
    settings[def.key] = parseSetting(def, raw ?? def.default);
  }
  return { command, settings, given: new Set(given.keys()) };
}

export function usage(command?: string): string {
  const commands = [
    ["up", "start everything on this machine: nats-server, receptor, auctioneer, dispatcher, converger, one cell"],
    ["receptor", "the Task API (gRPC, Connect, REST) against --nats"],
    ["auctioneer", "places pending tasks on cells (one active, others standby)"],
    ["dispatcher", "fires completion callbacks"],
    ["converger", "enforces timeouts, reaps and re-auctions tasks (one active, others standby)"],
    ["cell", "a cell-agent: bids for tasks and runs them in OCI containers"],
    ["task", "create, list, watch, run tasks and follow their logs through the API ('diego task --help')"],
    ["cells", "list the live cells through the API"],
  ];
  if (command && commands.some(([c]) => c === command)) {
    const lines = SETTINGS.filter((d) => d.for.includes(command)).map(
      (d) => `  --${d.flag.padEnd(24)} ${d.help} [env ${d.env}, default ${JSON.stringify(d.default)}]`,
    );
    return `usage: diego ${command} [flags]\n\n${lines.join("\n")}\n`;
  }
  return `usage: diego <command> [flags]\n\ncommands:\n${commands
    .map(([c, h]) => `  ${c!.padEnd(12)} ${h}`)
    .join("\n")}\n\nRun 'diego <command> --help' for its flags.\n`;
}
