/**
 * scripts/build.mjs (`npm run build`, and `npm start`'s prestart with --if-stale) on a tiny
 * project of its own: --if-stale compiles only when a source is newer than the last successful
 * build, and a failed build is not recorded as one.
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/cli.js";

function project(): string {
  const root = mkdtempSync(join(tmpdir(), "vellum-build-"));
  mkdirSync(join(root, "scripts"));
  mkdirSync(join(root, "src"));
  copyFileSync(join(REPO_ROOT, "scripts", "build.mjs"), join(root, "scripts", "build.mjs"));
  symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"));
  const options = { strict: true, target: "es2022", outDir: "dist", types: [], skipLibCheck: true };
  writeFileSync(join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: options }));
  writeFileSync(
    join(root, "tsconfig.build.json"),
    JSON.stringify({ extends: "./tsconfig.json", include: ["src"] }),
  );
  writeFileSync(join(root, "src", "a.ts"), "export const a: number = 1;\n");
  return root;
}

const build = (root: string, ...args: string[]) =>
  spawnSync(process.execPath, [join(root, "scripts", "build.mjs"), ...args], {
    cwd: root,
    encoding: "utf8",
  });

/** Moves a file's modification time `seconds` into the past (or the future if negative). */
const age = (path: string, seconds: number) => {
  const t = new Date(Date.now() - seconds * 1000);
  utimesSync(path, t, t);
};

describe("scripts/build.mjs", () => {
  it("--if-stale builds a project never built, then only after a source changes", {
    timeout: 60_000,
  }, () => {
    const root = project();
    const out = join(root, "dist", "a.js");
    const stamp = join(root, "dist", ".build-stamp");
    const first = build(root, "--if-stale");
    expect(first.status).toBe(0);
    expect(first.stderr).toContain("no successful build recorded");
    expect(readFileSync(out, "utf8")).toMatch(/\ba = 1;/);

    // Current: nothing compiled, nothing said, the output untouched (aged so a rewrite shows).
    age(out, 60);
    age(stamp, 30);
    for (const dir of [root, join(root, "src")]) age(dir, 60);
    for (const file of ["src/a.ts", "tsconfig.json", "tsconfig.build.json"])
      age(join(root, file), 60);
    const before = statSync(out).mtimeMs;
    const idle = build(root, "--if-stale");
    expect(idle.status).toBe(0);
    expect(idle.stderr).toBe("");
    expect(statSync(out).mtimeMs).toBe(before);

    // A source newer than the last build: compiled again.
    writeFileSync(join(root, "src", "a.ts"), "export const a: number = 2;\n");
    const again = build(root, "--if-stale");
    expect(again.status).toBe(0);
    expect(again.stderr).toContain("src changed since the last build");
    expect(readFileSync(out, "utf8")).toMatch(/\ba = 2;/);
  });

  it("a failed build is not recorded: the next --if-stale tries again", { timeout: 60_000 }, () => {
    const root = project();
    writeFileSync(join(root, "src", "a.ts"), "export const a: number = 'not a number';\n");
    expect(build(root).status).not.toBe(0);
    expect(existsSync(join(root, "dist", ".build-stamp"))).toBe(false);
    const retry = build(root, "--if-stale");
    expect(retry.status).not.toBe(0);
    expect(retry.stderr).toContain("no successful build recorded");
  });
});
