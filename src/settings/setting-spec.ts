// The declarative shape of a setting. Each component declares its own settings with these
// builders (flag, environment variable, typed default, help); the CLI composes the tables per
// command, parses flags and environment against them, and the README's table is generated from
// them. Pure data: no parsing of user input here.

/** A duration default written the way users write one: "30s", "100ms", "5m", "0". */
export type DurationText = `${number}${"ms" | "s" | "m" | "h"}` | "0";

interface Common {
  flag: string;
  env: string;
  /** One line for `diego <command> --help`. */
  help: string;
  /** The README's longer text, when --help's line leaves something out. */
  doc?: string;
}

export interface StringSpec<C extends string = string> extends Common {
  kind: "string";
  default: C;
  /** The only values allowed, if the setting is one of a few words. */
  choices?: readonly C[];
}

export interface IntSpec extends Common {
  kind: "int";
  default: number;
  min?: number;
  max?: number;
}

export interface DurationSpec extends Common {
  kind: "duration";
  default: DurationText;
  /** The shortest duration allowed, in milliseconds. */
  min?: number;
}

export interface ListSpec extends Common {
  kind: "list";
  /** Comma-separated, as a user would write it. */
  default: string;
}

export type SettingSpec = StringSpec | IntSpec | DurationSpec | ListSpec;
export type SettingTable = Readonly<Record<string, SettingSpec>>;

/** The parsed value of a setting: durations are milliseconds, lists are arrays. */
export type SettingValue<S> = S extends StringSpec<infer C>
  ? C
  : S extends IntSpec | DurationSpec
    ? number
    : string[];

export type SettingsOf<T extends SettingTable> = { -readonly [K in keyof T]: SettingValue<T[K]> };

type Omitted<S> = Omit<S, "kind">;

export const stringSetting = (s: Omitted<StringSpec>): StringSpec => ({ kind: "string", ...s });
export const choiceSetting = <const C extends string>(s: Omitted<StringSpec<C>> & { choices: readonly C[] }): StringSpec<C> => ({ kind: "string", ...s });
export const intSetting = (s: Omitted<IntSpec>): IntSpec => ({ kind: "int", ...s });
export const durationSetting = (s: Omitted<DurationSpec>): DurationSpec => ({ kind: "duration", ...s });
export const listSetting = (s: Omitted<ListSpec>): ListSpec => ({ kind: "list", ...s });

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a default (one number and one unit: the type allows nothing else). */
export function durationDefaultMs(text: DurationText): number {
  if (text === "0") return 0;
  const m = /^([0-9.]+)(ms|s|m|h)$/.exec(text)!;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** A list as a user would write it, split on commas. */
export const splitList = (raw: string): string[] => raw.split(",").map((s) => s.trim()).filter(Boolean);

export function defaultValue<S extends SettingSpec>(spec: S): SettingValue<S> {
  switch (spec.kind) {
    case "string":
    case "int":
      return spec.default as SettingValue<S>;
    case "duration":
      return durationDefaultMs(spec.default) as SettingValue<S>;
    case "list":
      return splitList(spec.default) as SettingValue<S>;
  }
}

/** The defaults of a table, typed: what a library entry point uses for options left out. */
export function defaultsOf<T extends SettingTable>(table: T): SettingsOf<T> {
  return Object.fromEntries(Object.entries(table).map(([k, spec]) => [k, defaultValue(spec)])) as SettingsOf<T>;
}
