/**
 * `vellum fsck --data DIR`: checks a stopped log's data directory offline (src/log/fsck.ts does
 * the checking): a summary on stdout (`--json` for machines), progress on stderr for large logs.
 * With `--store postgres://…` the log is the one in PostgreSQL (DATA gives its key and marker),
 * read through the embedded layout (postgres-layout-view.ts) in one read-only snapshot, so it
 * may be running; with `--archive s3://… --retention P` its WORM archive is checked too
 * (src/archive/check.ts). Exit status: 0 clean, 1 a problem was found, 2 the check could not run
 * (usage error, not a data directory, the directory in use by a running server, no such log, a
 * service that cannot be reached).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, CommanderError } from "commander";
import pg from "pg";
import { parseBucketUrl, WormBucket } from "../archive/bucket.js";
import { type ArchiveReport, checkArchive } from "../archive/check.js";
import { parseRetention, type RetentionPeriod } from "../archive/retention.js";
import { VellumError } from "../core/errors.js";
import { parseVerifierKey } from "../core/keys.js";
import { type FsckReport, fsck } from "../log/fsck.js";
import { PostgresLayoutView } from "../storage/postgres-layout-view.js";
import type { KeyValueStore } from "../storage/types.js";
import { databasePaths, type EmbeddedDatabases, openEmbeddedDatabases } from "./embedded-db.js";
import { DEFAULT_DATA } from "./serve.js";
import { describePostgresUrl, schemaBase } from "./serve-store.js";

interface FsckOptions {
  data: string;
  json?: boolean;
  /** The log is in PostgreSQL (vellum serve --store). */
  store?: string;
  /** Also check the WORM archive (vellum serve --archive), with the retention it must have. */
  archive?: string;
  retention?: string;
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
    `  entries      ${plural(r.entries, "leaf", "leaves")} re-hashed${r.strayLeaves === 0 ? "" : `; ${plural(r.strayLeaves, "leaf", "leaves")} past the tree's size, of a batch a crash cut off before it was acknowledged (deleted at the next start)`}`,
    ...(r.unfinishedBatch === undefined
      ? []
      : [
          `  unfinished   the last batch (entries ${r.unfinishedBatch.from} to ${r.unfinishedBatch.to - 1}) was stored without its leaves: a crash cut it off between its two writes, before it was acknowledged; checked as of size ${r.unfinishedBatch.from}, and the next start takes it back out`,
        ]),
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

/** Says why on stderr; returns the exit status. */
function fail(message: string, status: number): number {
  process.stderr.write(`vellum fsck: ${message}\n`);
  return status;
}

/** Runs the check; returns the exit status. */
export async function runFsck(opts: FsckOptions): Promise<number> {
  const dir = resolve(opts.data);
  const vkeyPath = join(dir, "log.vkey");
  const { dbPath } = databasePaths(dir);
  if (!existsSync(vkeyPath) || (opts.store === undefined && !existsSync(dbPath))) {
    return fail(
      `${dir} is not a Vellum data directory (it needs log.vkey${opts.store === undefined ? " and db/" : ""})`,
      CANNOT_CHECK,
    );
  }
  const verifierKey = readFileSync(vkeyPath, "utf8");
  let origin: string;
  let retention: RetentionPeriod | undefined;
  try {
    origin = parseVerifierKey(verifierKey.trim()).name;
    if (opts.archive !== undefined) {
      if (opts.retention === undefined) throw new Error("--archive needs --retention (e.g. 7y)");
      retention = parseRetention(opts.retention);
      parseBucketUrl(opts.archive);
    } else if (opts.retention !== undefined) {
      throw new Error("--retention is for --archive");
    }
    if (opts.store !== undefined) describePostgresUrl(opts.store);
  } catch (e) {
    return fail((e as Error).message, CANNOT_CHECK);
  }
  const checkpointPath = join(dir, "checkpoint");
  const lastPublished = existsSync(checkpointPath)
    ? readFileSync(checkpointPath, "utf8")
    : undefined;

  const opened = await openLogKv(opts, dir, origin);
  if (typeof opened === "number") return opened;
  let where = dir;
  if (opts.store !== undefined) where = `${describePostgresUrl(opts.store)} (${opened.schema})`;

  let lastProgress = Date.now();
  let report: FsckReport;
  try {
    report = await fsck({
      kv: opened.kv,
      ...(opened.entries === undefined ? {} : { entries: opened.entries }),
      verifierKey,
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
    await opened.close().catch(() => undefined);
    if (e instanceof VellumError && e.code === "BAD_KEY") {
      return fail(`${vkeyPath}: ${e.message}`, CANNOT_CHECK);
    }
    // A read that fails (LevelDB reports a damaged block) is a problem with the data.
    const cause =
      (e as Error).cause instanceof Error ? `: ${((e as Error).cause as Error).message}` : "";
    return fail(`problem: reading the database failed (${(e as Error).message}${cause})`, PROBLEMS);
  }
  await opened.close();

  let archive: ArchiveReport | undefined;
  if (opts.archive !== undefined && retention !== undefined) {
    let bucket: WormBucket | undefined;
    try {
      bucket = await WormBucket.open(opts.archive);
      archive = await checkArchive(bucket, { verifierKey: verifierKey.trim(), retention });
    } catch (e) {
      return fail(`--archive ${opts.archive}: ${(e as Error).message}`, CANNOT_CHECK);
    } finally {
      bucket?.close();
    }
  }
  const clean = report.clean && (archive === undefined || archive.problems.length === 0);
  if (opts.json === true) {
    process.stdout.write(
      `${JSON.stringify({ dir, where, ...report, ...(archive === undefined ? {} : { archive }), clean }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(summary(where, report));
    if (archive !== undefined) process.stdout.write(archiveSummary(opts.archive!, archive));
  }
  return clean ? CLEAN : PROBLEMS;
}

/**
 * The log's key-value view: DATA/db's "log" namespace (and DATA/entries'), or a snapshot of its
 * PostgreSQL schema.
 */
async function openLogKv(
  opts: FsckOptions,
  dir: string,
  origin: string,
): Promise<
  number | { kv: KeyValueStore; entries?: KeyValueStore; schema?: string; close(): Promise<void> }
> {
  if (opts.store !== undefined) {
    const where = describePostgresUrl(opts.store);
    const schema = `${schemaBase(origin)}_log`;
    const pool = new pg.Pool({ connectionString: opts.store, max: 1 });
    pool.on("error", () => undefined); // an idle connection's failure; the next query reports
    try {
      const view = await PostgresLayoutView.open(pool, schema);
      if (view === undefined) {
        await pool.end();
        return fail(`${where} holds no log "${origin}" (no schema ${schema})`, CANNOT_CHECK);
      }
      return {
        kv: view,
        schema,
        async close() {
          await view.close();
          await pool.end();
        },
      };
    } catch (e) {
      await pool.end().catch(() => undefined);
      return fail(`${where}: ${(e as Error).message}`, CANNOT_CHECK);
    }
  }
  let dbs: EmbeddedDatabases;
  try {
    dbs = await openEmbeddedDatabases(databasePaths(dir), { createIfMissing: false });
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
  return { ...dbs.place("log"), close: () => dbs.close() };
}

function archiveSummary(url: string, r: ArchiveReport): string {
  const lines = [
    `vellum fsck: archive ${url}: ${plural(r.objects, "object")}, ${plural(r.bundles, "bundle")} (${plural(r.entries, "entry", "entries")}), ${plural(r.tiles, "tile")}, ${plural(r.checkpoints, "checkpoint")} up to size ${r.largestCheckpoint}: locks, tiles re-derived, checkpoints signed and consistent`,
  ];
  for (const p of r.problems) lines.push(`problem: archive: ${p}`);
  lines.push(
    r.problems.length === 0
      ? "archive clean: no problems found"
      : `${plural(r.problems.length, "archive problem")} found`,
  );
  return `${lines.join("\n")}\n`;
}

export function registerFsck(program: Command): void {
  program
    .command("fsck")
    .description(
      "check a log from its stored data alone (a stopped data directory, or the log in PostgreSQL, and its WORM archive): every leaf re-hashed, the tree re-derived, every checkpoint verified",
    )
    .option(
      "--data <dir>",
      "data directory (env VELLUM_DATA)",
      process.env.VELLUM_DATA ?? DEFAULT_DATA,
    )
    .option(
      "--store <postgres://…>",
      "the log is in PostgreSQL (as vellum serve --store); checked in one read-only snapshot, so the log may be running",
    )
    .option(
      "--archive <s3://bucket/prefix>",
      "also check the log's WORM archive in this bucket (as vellum archive check)",
    )
    .option("--retention <period>", "with --archive: the retention every object must have")
    .option("--json", "print the report as JSON")
    .allowExcessArguments(false)
    .exitOverride((e) => {
      // Usage errors exit 2, so that 1 always means "a problem was found".
      throw e.exitCode === 0 ? e : new CommanderError(CANNOT_CHECK, e.code, e.message);
    })
    .addHelpText(
      "after",
      "\nExit status: 0 clean, 1 a problem was found, 2 the check could not run.\n\nExamples:\n  npx vellum fsck --data ./vellum-data\n  npx vellum fsck --data ./vellum-data --store postgres://vellum@db:5432/vellum --archive s3://audit-worm/prod --retention 7y\n",
    )
    .action(async (opts: FsckOptions) => {
      process.exitCode = await runFsck(opts);
    });
}
