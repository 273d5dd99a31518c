import { parseDuration } from "../duration/index.js";
import { SETTINGS } from "./settings.js";

// Library entry points (startDispatcher, startConverger, ...) take their defaults from the one
// settings table, so the CLI help and the code agree.

/** The default of a setting: milliseconds for durations, the number for ints. */
export function settingDefault(key: string): number {
  const def = SETTINGS.find((d) => d.key === key);
  if (!def) throw new Error(`no setting named '${key}'`);
  return def.kind === "duration" ? parseDuration(def.default) : Number(def.default);
}
