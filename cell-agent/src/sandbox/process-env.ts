import { DEFAULT_PATH } from "./oci-config.js";

/**
 * Container env then process env; a later NAME=value replaces an earlier one with the same
 * name (keeping the first position). PATH gets the usual default when nobody set it.
 */
export function mergeEnv(containerEnv: string[], processEnv: string[]): string[] {
  const byName = new Map<string, string>();
  for (const entry of [...containerEnv, ...processEnv]) {
    const eq = entry.indexOf("=");
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (name === "") continue;
    byName.set(name, eq < 0 ? `${entry}=` : entry);
  }
  if (!byName.has("PATH")) byName.set("PATH", DEFAULT_PATH);
  return [...byName.values()];
}
