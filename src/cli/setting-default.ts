import { parseDuration } from "../cli/duration.js";
import { SETTINGS } from "../cli/settings.js";

// Defaults come from the one settings table, so the CLI help and the library agree.

export function settingDefault(key: string): number {
  const def = SETTINGS.find((d) => d.key === key);
  if (!def) throw new Error(`no setting named '${key}'`);
  return def.kind === "duration" ? parseDuration(def.default) : Number(def.default);
}
