// Prints the README's configuration table from the settings list (npx tsx scripts/settings-table.ts).
import { SETTINGS } from "../src/cli/settings.js";

const rows = SETTINGS.map(
  (d) => `| \`--${d.flag}\` | \`${d.env}\` | \`${d.default || '""'}\` | ${d.for.join(", ")} | ${d.help} |`,
);
process.stdout.write(["| flag | environment | default | used by | meaning |", "|---|---|---|---|---|", ...rows].join("\n") + "\n");
