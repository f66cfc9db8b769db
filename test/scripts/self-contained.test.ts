/**
 * A lone clone runs every test: no test, helper or script reads a path outside the repository
 * (the known-answer vectors live in test/known-answers/, copied with their sources noted). A
 * reference to a sibling folder such as ../shared/ fails here before it fails a user.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sources(path);
    else if (/\.(ts|mjs|js|sh)$/.test(name)) yield path;
  }
}

describe("the repository is self-contained", () => {
  it("no test or script refers to a folder beside the repository", () => {
    const outside: string[] = [];
    for (const top of ["test", "scripts"]) {
      for (const path of sources(join(ROOT, top))) {
        if (path === fileURLToPath(import.meta.url)) continue; // its own patterns
        const text = readFileSync(path, "utf8");
        // ../shared, or enough ../ to climb above the repository from where the file is.
        const depth = relative(ROOT, path).split("/").length - 1;
        const climb = new RegExp(`["'\`](\\.\\./){${depth + 1},}`);
        if (/\.\.\/shared\b|\/work\/shared\b/.test(text) || climb.test(text)) {
          outside.push(relative(ROOT, path));
        }
      }
    }
    expect(outside).toEqual([]);
  });
});
