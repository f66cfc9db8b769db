#!/usr/bin/env node
// Keeps the verifier library portable: nothing under src/core/ may import a node:* module (or a
// Node built-in by its bare name), use Buffer or process, or reach outside src/core/ except the
// @noble packages. Run by `npm run lint` and by CI.
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";

const root = new URL("../src/core/", import.meta.url).pathname;
const builtins = new Set(builtinModules);
const problems = [];
for (const name of readdirSync(root)) {
  if (!name.endsWith(".ts")) continue;
  const text = readFileSync(join(root, name), "utf8");
  for (const m of text.matchAll(
    /(?:import|export)[^"';]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']/g,
  )) {
    const spec = m[1] ?? m[2];
    const ok = spec.startsWith("./") || spec.startsWith("@noble/");
    if (!ok || spec.startsWith("node:") || builtins.has(spec)) {
      problems.push(`src/core/${name}: imports "${spec}"`);
    }
  }
  const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
  for (const word of ["Buffer", "process", "require(", "Date.now", "new Date", "Math.random"]) {
    if (code.includes(word)) problems.push(`src/core/${name}: uses ${word}`);
  }
}
if (problems.length > 0) {
  console.error(
    `src/core/ must stay pure (no I/O, no clock, no node:*):\n  ${problems.join("\n  ")}`,
  );
  process.exit(1);
}
console.log("src/core/ is pure: no node:* imports, Buffer, process, clock or randomness");
