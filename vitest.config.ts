import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests spawn bin/diego.js, which runs the compiled code.
    globalSetup: ["./test/support/build-dist.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Container tests are CPU-heavy; two workers match the 2-core machines.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
