#!/usr/bin/env node
// The layer check (`npm run lint`): which folders of src/ (and web/) may import which, from one
// short table, plus the purity of src/core/ (the verifier library: browser-safe, no I/O, no
// clock). A wrong import fails with the file, line and the rule it breaks.
//
// Usage: node scripts/check-layers.mjs [ROOT]   (ROOT defaults to the repository; tests pass a
// fixture tree). Also importable: checkLayers(root) returns the problems as strings.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Folder → folders it may import (besides itself). `types` lists folders it may import only with
 * `import type` (a type names a contract; it constructs nothing and reaches no storage).
 */
export const LAYERS = {
  core: { may: [], why: "core is the pure verifier library: it imports nothing of ours" },
  platform: { may: ["core"], why: "platform holds node-only helpers below every feature" },
  storage: { may: ["core", "platform"], why: "storage drivers know no log, server or client" },
  log: {
    may: ["core", "storage", "platform"],
    why: "the log reaches storage through its seam, never the server",
  },
  audit: {
    may: ["core", "log", "storage", "platform"],
    why: "the audit trail is built on the log, never inside the server",
  },
  indexing: {
    may: ["core", "log", "storage", "platform"],
    why: "the verifiable index follows a log through its façade and keeps its own store",
  },
  archive: {
    may: ["core", "log", "storage", "platform"],
    why: "the WORM archive copies a log's sealed tiles through its façade into a bucket",
  },
  auth: { may: ["core", "storage", "platform"], why: "tokens are a store of their own" },
  client: { may: ["core", "platform"], why: "the client never imports server, log or storage" },
  witness: {
    may: ["core", "storage", "platform"],
    why: "the witness never imports the log or the server",
  },
  server: {
    may: ["core", "log", "audit", "auth", "indexing", "platform"],
    types: ["storage"],
    why: "routes reach storage only through the log (type-only imports of the contract allowed)",
  },
  tools: { may: ["core", "platform"], why: "tools generate vectors from core alone" },
  cli: { may: "*", why: "the command line wires everything" },
  web: { may: ["client", "core"], why: "the browser code speaks HTTP through the client only" },
};

const IMPORT =
  /(?:^|\n)\s*(import|export)(\s+type)?\b[^"';]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']/g;
const builtins = new Set(builtinModules);

function* files(dir) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith(".d.ts")) yield path;
  }
}

/** The layer a file belongs to: src/<layer>/… or web/… */
function layerOf(root, path) {
  const rel = relative(root, path).split(sep);
  if (rel[0] === "web") return "web";
  if (rel[0] === "src" && rel.length > 2) return rel[1];
  return undefined; // src/index.ts and friends: the package's entry points re-export anything
}

export function checkLayers(root) {
  const problems = [];
  for (const top of ["src", "web"]) {
    for (const path of files(join(root, top))) {
      const from = layerOf(root, path);
      if (from === undefined) continue;
      const rule = LAYERS[from];
      const text = readFileSync(path, "utf8");
      const where = (index) => `${relative(root, path)}:${text.slice(0, index).split("\n").length}`;
      if (rule === undefined) {
        problems.push(
          `${where(0)}: folder "${from}" is not in the layer table (scripts/check-layers.mjs)`,
        );
        continue;
      }
      for (const m of text.matchAll(IMPORT)) {
        const typeOnly = m[2] !== undefined;
        const spec = m[3] ?? m[4];
        const at = where(m.index + (m[0].startsWith("\n") ? 1 : 0));
        if (from === "core" && !spec.startsWith("./") && !spec.startsWith("@noble/")) {
          problems.push(`${at}: imports "${spec}" — ${rule.why} (only ./ and @noble/*)`);
          continue;
        }
        if (from === "web" && (spec.startsWith("node:") || builtins.has(spec))) {
          problems.push(`${at}: imports "${spec}" — browser code cannot use Node built-ins`);
          continue;
        }
        if (!spec.startsWith(".")) continue;
        const target = layerOf(root, resolve(dirname(path), spec));
        if (target === undefined || target === from || rule.may === "*") continue;
        if (rule.may.includes(target)) continue;
        if (typeOnly && rule.types?.includes(target)) continue;
        problems.push(`${at}: ${from} imports ${target} ("${spec}") — ${rule.why}`);
      }
      if (from === "core") {
        const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
        for (const word of [
          "Buffer",
          "process",
          "require(",
          "Date.now",
          "new Date",
          "Math.random",
        ]) {
          if (code.includes(word))
            problems.push(`${where(0)}: uses ${word} — ${rule.why}, no I/O or clock`);
        }
      }
    }
  }
  return problems;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url)));
  const problems = checkLayers(root);
  if (problems.length > 0) {
    console.error(`layer check: ${problems.length} wrong import(s):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(
    `layer check: imports follow the table in scripts/check-layers.mjs (${Object.keys(LAYERS).join(", ")}); src/core/ is pure`,
  );
}
