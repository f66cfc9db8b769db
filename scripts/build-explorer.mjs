/**
 * Bundles the explorer (web/explorer/) for `vellum serve` to serve at /: esbuild, one ES module
 * for the browser (the SDK and the verifier core included; no Node.js built-in), minified, plus
 * the page and its style sheet. `npm run build` writes them to dist/web/; tests take them in
 * memory. Nothing is fetched from elsewhere at run time (no CDN, no fonts).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SOURCE = join(ROOT, "web", "explorer");

/** { "index.html", "app.js", "app.css" } as strings. */
export async function bundleExplorer() {
  const result = await build({
    entryPoints: [join(SOURCE, "main.ts")],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    write: false,
    logLevel: "silent",
    legalComments: "none",
  });
  return {
    "index.html": readFileSync(join(SOURCE, "index.html"), "utf8"),
    "app.js": result.outputFiles[0].text,
    "app.css": readFileSync(join(SOURCE, "app.css"), "utf8"),
  };
}

/** Writes the bundle to dist/web/. */
export async function writeExplorer() {
  const files = await bundleExplorer();
  const out = join(ROOT, "dist", "web");
  mkdirSync(out, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(out, name), text);
  return files;
}
