#!/usr/bin/env node
/**
 * Builds dist/ with tsc, and with `--if-stale` only when it is out of date: `npm start`'s
 * prestart, so that a start with dist/ current costs ~0.1 s instead of a ~10 s compile.
 *
 *   node scripts/build.mjs             always build (`npm run build`)
 *   node scripts/build.mjs --if-stale  build only if a file under src/ or a tsconfig is newer
 *                                      than the last successful build (`npm start`)
 *
 * A successful build writes dist/.build-stamp with the time the build *started*, so that a
 * source saved while tsc runs is still newer than the stamp and triggers the next build. A failed
 * build leaves the stamp as it was (tsc emits even on type errors; that output is never trusted).
 * Staleness is by modification time, as make judges it: git, editors and `touch` all update it;
 * only a copy that keeps an older time (`cp -p`, unpacking an archive) can hide a change, and
 * `npm run build` then rebuilds regardless.
 *
 * Measured (2-core machine, dist/ current): `npm start` to "serving on" 7.8-11.6 s before (a full
 * tsc on every start), ~0.9 s after; `tsc --incremental` with its tsbuildinfo in dist/ was
 * considered and measured at 2.8 s for a no-change build, and it does not re-emit outputs deleted
 * from dist/ while the tsbuildinfo stays, so an mtime check it is.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const STAMP = join(ROOT, "dist", ".build-stamp");
const INPUTS = ["src", "web", "tsconfig.json", "tsconfig.build.json"];

/** The newest modification time (ms) among `path` and, for a directory, everything under it. */
function newest(path) {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  let max = stats.mtimeMs; // a file deleted or renamed changes its directory's time
  for (const entry of readdirSync(path)) max = Math.max(max, newest(join(path, entry)));
  return max;
}

function stale() {
  if (!existsSync(STAMP)) return "no successful build recorded in dist/";
  const built = statSync(STAMP).mtimeMs;
  const changed = INPUTS.find(
    (input) => existsSync(join(ROOT, input)) && newest(join(ROOT, input)) > built,
  );
  return changed === undefined ? undefined : `${changed} changed since the last build`;
}

if (process.argv.includes("--if-stale")) {
  const why = stale();
  if (why === undefined) process.exit(0);
  console.error(`vellum: building dist/ (${why})`);
}
const started = new Date();
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
  cwd: ROOT,
  stdio: "inherit",
});
if (result.status !== 0) process.exit(result.status ?? 1);
// The explorer's bundle (dist/web/), which vellum serve serves at /.
if (existsSync(join(ROOT, "web", "explorer", "main.ts"))) {
  const { writeExplorer } = await import("./build-explorer.mjs");
  await writeExplorer();
}
writeFileSync(STAMP, `${started.toISOString()}\n`);
utimesSync(STAMP, started, started);
