// Writes the README's configuration table from the settings tables: npm run docs:settings.
import { readFile, writeFile } from "node:fs/promises";
import { withConfigurationTable } from "../src/cli/settings-doc.js";

const readme = new URL("../README.md", import.meta.url);
const before = await readFile(readme, "utf8");
const after = withConfigurationTable(before);
if (after !== before) await writeFile(readme, after);
process.stdout.write(after === before ? "README.md: configuration table up to date\n" : "README.md: configuration table rewritten\n");
