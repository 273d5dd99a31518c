#!/usr/bin/env node
// Runs the compiled code in dist/ (`npm run build`; scripts/install.sh builds it). Loading the
// TypeScript sources through tsx instead costs about a CPU-second at every start.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(`diego: ${fileURLToPath(main)} is missing; build it with \`npm run build\` (or run the sources: npx tsx src/cli/main.ts)\n`);
  process.exit(1);
}
await import(main.href);
