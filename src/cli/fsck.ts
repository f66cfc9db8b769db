/**
 * `vellum fsck --data DIR`: checks a stopped log's data directory offline (src/log/fsck.ts does
 * the checking): a summary on stdout (`--json` for machines), progress on stderr for large logs.
 * Exit status: 0 clean, 1 a problem was found, 2 the check could not run (usage error, not a data
 * directory, or the directory is in use by a running server).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, CommanderError } from "commander";
import { VellumError } from "../core/errors.js";
import { type FsckReport, fsck } from "../log/fsck.js";
import { openLevelDatabase } from "../storage/level.js";
import type { Database } from "../storage/types.js";
import { DEFAULT_DATA } from "./serve.js";

interface FsckOptions {
  data: string;
  json?: boolean;
}

/** Exit statuses. */
const CLEAN = 0;
const PROBLEMS = 1;
const CANNOT_CHECK = 2;

/** Logs larger than this get a progress line on stderr (about one a second). */
const PROGRESS_FROM = 100_000;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function summary(dir: string, r: FsckReport): string {
  const lines = [
    `vellum fsck: ${dir}: log "${r.origin}", tree size ${r.size ?? "unknown (no valid tree state)"}`,
    `  entries      ${plural(r.entries, "leaf", "leaves")} re-hashed`,
    `  tree         ${plural(r.nodes, "node")} in ${plural(r.tiles, "stored tile")} compared with the tree re-derived from the leaves`,
    `  checkpoints  ${plural(r.checkpoints, "stored checkpoint")} checked (signatures, roots)${r.lastPublished === undefined ? "" : `; DATA/checkpoint (size ${r.lastPublished}) too`}`,
    `  indexes      checked in full: id ${r.indexes.id}, leaf hash ${r.indexes.leafHash}, payload ${r.indexes.payload}, idempotency key ${r.indexes.idempotencyKey}`,
  ];
  for (const p of r.problems) lines.push(`problem: ${p.message}`);
  if (r.clean) {
    lines.push("clean: no problems found");
  } else {
    const shown =
      r.problems.length < r.problemCount ? ` (the first ${r.problems.length} shown)` : "";
    lines.push(`${plural(r.problemCount, "problem")} found${shown}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Runs the check; returns the exit status. */
export async function runFsck(opts: FsckOptions): Promise<number> {
  const dir = resolve(opts.data);
  const fail = (message: string, status: number) => {
    process.stderr.write(`vellum fsck: ${message}\n`);
    return status;
  };
  const vkeyPath = join(dir, "log.vkey");
  const dbPath = join(dir, "db");
  if (!existsSync(vkeyPath) || !existsSync(dbPath)) {
    return fail(`${dir} is not a Vellum data directory (it needs log.vkey and db/)`, CANNOT_CHECK);
  }
  const checkpointPath = join(dir, "checkpoint");
  const lastPublished = existsSync(checkpointPath)
    ? readFileSync(checkpointPath, "utf8")
    : undefined;

  let db: Database;
  try {
    db = await openLevelDatabase(dbPath, { createIfMissing: false });
  } catch (e) {
    if (e instanceof VellumError && e.code === "LOCKED") {
      return fail(
        `${dir} is in use by a running server (LevelDB LOCK): stop it first, or check a copy of the directory`,
        CANNOT_CHECK,
      );
    }
    const cause =
      (e as Error).cause instanceof Error ? `: ${((e as Error).cause as Error).message}` : "";
    return fail(`problem: the database does not open (${(e as Error).message}${cause})`, PROBLEMS);
  }

  let lastProgress = Date.now();
  let report: FsckReport;
  try {
    report = await fsck({
      kv: db.namespace("log"),
      verifierKey: readFileSync(vkeyPath, "utf8"),
      ...(lastPublished === undefined ? {} : { lastPublished }),
      onProgress: ({ phase, done, total }) => {
        const now = Date.now();
        if ((total ?? 0) < PROGRESS_FROM || now - lastProgress < 1000) return;
        lastProgress = now;
        const share = phase === "entries" && total ? ` (${Math.floor((100 * done) / total)}%)` : "";
        process.stderr.write(`vellum fsck: ${phase}: ${done} of ${total}${share}\n`);
      },
    });
  } catch (e) {
    await db.close().catch(() => undefined);
    if (e instanceof VellumError && e.code === "BAD_KEY") {
      return fail(`${vkeyPath}: ${e.message}`, CANNOT_CHECK);
    }
    // A read that fails (LevelDB reports a damaged block) is a problem with the data.
    const cause =
      (e as Error).cause instanceof Error ? `: ${((e as Error).cause as Error).message}` : "";
    return fail(`problem: reading the database failed (${(e as Error).message}${cause})`, PROBLEMS);
  }
  await db.close();
  process.stdout.write(
    opts.json === true ? `${JSON.stringify({ dir, ...report }, null, 2)}\n` : summary(dir, report),
  );
  return report.clean ? CLEAN : PROBLEMS;
}

export function registerFsck(program: Command): void {
  program
    .command("fsck")
    .description(
      "check a stopped log's data directory offline: every leaf re-hashed, the tree re-derived, every checkpoint verified",
    )
    .option(
      "--data <dir>",
      "data directory (env VELLUM_DATA)",
      process.env.VELLUM_DATA ?? DEFAULT_DATA,
    )
    .option("--json", "print the report as JSON")
    .allowExcessArguments(false)
    .exitOverride((e) => {
      // Usage errors exit 2, so that 1 always means "a problem was found".
      throw e.exitCode === 0 ? e : new CommanderError(CANNOT_CHECK, e.code, e.message);
    })
    .addHelpText(
      "after",
      "\nExit status: 0 clean, 1 a problem was found, 2 the check could not run.\n\nExample:\n  npx vellum fsck --data ./vellum-data\n",
    )
    .action(async (opts: FsckOptions) => {
      process.exitCode = await runFsck(opts);
    });
}
