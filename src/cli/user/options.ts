import { parseArgs } from "node:util";
import type { ApiOptions } from "./api-client.js";
import type { StringSpec } from "../../settings/index.js";
import { UsageError } from "./errors.js";

// The command line of the user commands, through node:util's parseArgs: flags may come before or
// after the positional arguments, and every command takes the global ones.

export const DEFAULT_API = "http://127.0.0.1:8888";

/**
 * The settings every user command reads from a flag or the environment (plain data: the user
 * commands load nothing outside src/cli/user).
 */
export const userSettings = {
  api: { kind: "string", flag: "api", env: "DIEGO_API", default: DEFAULT_API, help: "the receptor the user commands talk to", doc: "the receptor the user commands talk to ([docs/cli.md](docs/cli.md))" },
  authUser: { kind: "string", flag: "auth-user", env: "DIEGO_AUTH_USER", default: "", help: "HTTP Basic user the user commands send (with --auth-password)" },
  authPassword: { kind: "string", flag: "auth-password", env: "DIEGO_AUTH_PASSWORD", default: "", help: "HTTP Basic password the user commands send" },
  authToken: { kind: "string", flag: "auth-token", env: "DIEGO_AUTH_TOKEN", default: "", help: "Bearer token the user commands send (not with --auth-user)", doc: "Bearer token the user commands send (not with `--auth-user`)" },
} as const satisfies Record<string, StringSpec>;

type OptionSpec = { type: "string" | "boolean"; short?: string };
export type OptionSpecs = Record<string, OptionSpec>;

export const GLOBAL_OPTIONS: OptionSpecs = {
  api: { type: "string" },
  "auth-user": { type: "string" },
  "auth-password": { type: "string" },
  "auth-token": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

export interface ParsedLine {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses `args` against the command's own flags plus the global ones. */
export function parseLine(args: string[], own: OptionSpecs, command: string): ParsedLine {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...own }, allowPositionals: true, strict: true });
    return { values: values as ParsedLine["values"], positionals };
  } catch (err) {
    throw new UsageError(`${parseProblem(err as Error)} (see 'diego ${command} --help')`);
  }
}

/** node's messages are long; keep the first sentence, which names the flag. */
function parseProblem(err: Error): string {
  const code = (err as { code?: string }).code;
  const flag = /'(-[^' ]+)/.exec(err.message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) return `unknown flag ${flag}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) return `${flag} needs a value`;
  return err.message.split(". ")[0]!;
}

export interface GlobalSettings {
  api: ApiOptions;
  json: boolean;
}

/** --api and the auth flags, each falling back to its environment variable. */
export function globalSettings(values: ParsedLine["values"], env: NodeJS.ProcessEnv): GlobalSettings {
  const str = (key: keyof typeof userSettings): string | undefined => {
    const { flag, env: envName } = userSettings[key];
    return (values[flag] as string | undefined) ?? (env[envName] || undefined);
  };
  const api = str("api") ?? userSettings.api.default;
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new UsageError(`--api must be a URL such as ${DEFAULT_API}, got '${api}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--api must be an http or https URL, got '${api}'`);
  return {
    api: {
      baseUrl: url.href.replace(/\/+$/, ""),
      authorization: authorization(str("authUser"), str("authPassword"), str("authToken")),
    },
    json: values.json === true,
  };
}

function authorization(user: string | undefined, password: string | undefined, token: string | undefined): string | undefined {
  if (token !== undefined && (user !== undefined || password !== undefined)) {
    throw new UsageError("give either --auth-token or --auth-user/--auth-password, not both");
  }
  if (token !== undefined) return `Bearer ${token}`;
  if (user === undefined && password === undefined) return undefined;
  if (user === undefined || password === undefined) throw new UsageError("--auth-user and --auth-password go together");
  if (user.includes(":")) throw new UsageError("--auth-user cannot contain ':' (Basic auth separates user and password with it)");
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}
