/**
 * The README's way to use the SDK in another project: `npm pack` makes a tarball holding what an
 * installed package needs (the CLI, the built SDK and verifier, the specs, the README). Packed
 * here as a dry run without scripts (`npm test` built dist/ already), offline.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/cli.js";

describe("npm pack", () => {
  it("packs the CLI, the SDK's entry points, the specs and the README", () => {
    const out = execFileSync(
      "npm",
      ["pack", "--dry-run", "--json", "--ignore-scripts", "--offline"],
      { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 },
    );
    const [pack] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    expect(pack!.filename).toMatch(/^vellum-\d+\.\d+\.\d+\.tgz$/);
    const files = new Set(pack!.files.map((f) => f.path));
    for (const needed of [
      "package.json",
      "README.md",
      "bin/vellum.js",
      "dist/index.js",
      "dist/index.node.js",
      "dist/client/index.js",
      "dist/client/index.d.ts",
      "dist/client/file-store.js",
      "spec/openapi.json",
    ]) {
      expect(files, needed).toContain(needed);
    }
    expect([...files].some((f) => f.startsWith("test/") || f.startsWith("src/"))).toBe(false);
  });
});
