import { writeSync } from "node:fs";
import type { Reporter, TestModule } from "vitest/node";

// Ends the run with the plain "N passed, N failed" line that CI reads.
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      if (m.state() === "failed" && [...m.children.allTests()].length === 0) failed++;
    }
    const line = `tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
    // After every other reporter's summary, so it is the run's closing line.
    process.once("exit", () => writeSync(1, `\n${line}\n`));
  }
}
