import { defineConfig } from "vitest/config";

// Under CI (CI=true) vitest also writes a JSON report, from which .ci/run prints its summary line.
const ci = process.env.CI === "true";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ci ? ["default", "json"] : ["default"],
    outputFile: ci ? { json: "reports/vitest.json" } : {},
  },
});
