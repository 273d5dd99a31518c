import { splitList, type SettingSpec, type SettingValue } from "../settings/index.js";
import { formatDuration, parseDuration } from "../duration/index.js";
import { InvalidSettingError } from "./settings.js";

// A flag's or environment variable's text as the setting's typed value, or an error naming the flag.

export function parseSetting<S extends SettingSpec>(spec: S, raw: string): SettingValue<S> {
  return parseAny(spec, raw) as SettingValue<S>;
}

function parseAny(spec: SettingSpec, raw: string): string | number | string[] {
  switch (spec.kind) {
    case "string":
      if (spec.choices && !spec.choices.includes(raw)) {
        throw new InvalidSettingError(`--${spec.flag} must be one of ${spec.choices.join(", ")}; got '${raw}'`);
      }
      return raw;
    case "list":
      return splitList(raw);
    case "int": {
      if (!/^[0-9]+$/.test(raw.trim())) throw new InvalidSettingError(`--${spec.flag} must be a whole number, got '${raw}'`);
      const n = Number(raw);
      if (spec.max !== undefined && n > spec.max) throw new InvalidSettingError(`--${spec.flag} must be at most ${spec.max}, got ${raw}`);
      if (spec.min !== undefined && n < spec.min) throw new InvalidSettingError(`--${spec.flag} must be at least ${spec.min}, got ${raw}`);
      return n;
    }
    case "duration": {
      let ms: number;
      try {
        ms = parseDuration(raw);
      } catch (err) {
        throw new InvalidSettingError(`--${spec.flag}: ${(err as Error).message}`);
      }
      if (spec.min !== undefined && ms < spec.min) throw new InvalidSettingError(`--${spec.flag} must be at least ${formatDuration(spec.min)}, got '${raw}'`);
      return ms;
    }
  }
}

/** The default as a user would write it: what --help and the README show. */
export const defaultText = (spec: SettingSpec): string => String(spec.default);
