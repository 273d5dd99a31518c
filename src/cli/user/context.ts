import type { ApiClient } from "./api-client.js";
import { UsageError } from "./errors.js";
import type { OptionSpecs, ParsedLine } from "./options.js";

/** What a user command runs with. */
export interface Context {
  client: ApiClient;
  json: boolean;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  /** Aborted on Ctrl-C or SIGTERM. */
  signal: AbortSignal;
  values: ParsedLine["values"];
  positionals: string[];
}

export interface UserCommand {
  /** `diego task get GUID`, as the help shows it. */
  synopsis: string;
  help: string;
  options: OptionSpecs;
  /** Help lines for the command's own flags: [flag, meaning]. */
  flagHelp?: Array<[string, string]>;
  /** Resolves to the exit code. */
  run(ctx: Context): Promise<number>;
}

/** The one positional argument a command takes, e.g. GUID. */
export function onePositional(ctx: Context, name: string, command: string): string {
  const [first, ...rest] = ctx.positionals;
  if (first === undefined || first === "") throw new UsageError(`'diego ${command}' needs ${name} (see 'diego ${command} --help')`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' (see 'diego ${command} --help')`);
  return first;
}

export function noPositionals(ctx: Context, command: string): void {
  if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument '${ctx.positionals[0]}' (see 'diego ${command} --help')`);
}

export const writeLine = (stream: NodeJS.WriteStream, text: string): void => {
  stream.write(text.endsWith("\n") ? text : `${text}\n`);
};
