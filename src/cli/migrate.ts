/**
 * @module
 * `vellum migrate --data DIR`: moves a stopped server's logs made before layout 3 to it (their
 * leaves into DATA/entries; src/storage/kv-log-migrate.ts does the moving, crash-safely). Every
 * log of the directory is looked at: the server's log, its index log, its access log and that
 * log's index log. Running it again does nothing once they are all at layout 3, and finishes a
 * migration a crash cut off. Exit 0 when every log is at layout 3; 3 when a log's storage
 * contradicts itself; 4 when the directory cannot be used (in use by a server, not a data
 * directory, a failed write).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { VellumError } from "../core/errors.js";
import { type MigrationProgress, migrateToEntriesStore } from "../storage/kv-log-migrate.js";
import {
  databaseBytes,
  databasePaths,
  type EmbeddedDatabases,
  openEmbeddedDatabases,
} from "./embedded-db.js";
import { EXIT_EVIDENCE, EXIT_IO, exitCodesHelp } from "./exit-codes.js";
import { DEFAULT_DATA } from "./serve.js";

/** The logs a data directory can hold, by their namespace (serve-store.ts). */
const LOGS = ["log", "index-log", "access-log", "access-index-log"] as const;

/** Logs larger than this get a progress line on stderr (about one a second). */
const PROGRESS_FROM = 100_000;

const count = (n: number) => n.toLocaleString("en-US");
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function migrate(dataDir: string): Promise<number> {
  const fail = (message: string, code: number) => {
    process.stderr.write(`vellum migrate: ${message}\n`);
    return code;
  };
  if (!existsSync(join(dataDir, "db"))) {
    return fail(`${dataDir} is not a Vellum data directory (it has no db/)`, EXIT_IO);
  }
  let dbs: EmbeddedDatabases;
  try {
    dbs = await openEmbeddedDatabases(databasePaths(dataDir), {
      createIfMissing: false,
      createEntries: true,
    });
  } catch (e) {
    if (e instanceof VellumError && e.code === "LOCKED") {
      return fail(`${dataDir} is in use by a running server: stop it first`, EXIT_IO);
    }
    throw e;
  }
  let found = 0;
  let moved = 0;
  const dbBytesBefore = databaseBytes(join(dataDir, "db"));
  try {
    for (const name of LOGS) {
      const { kv, entries } = dbs.place(name);
      const started = Date.now();
      let said = started;
      const onProgress = (p: MigrationProgress) => {
        if (p.total < PROGRESS_FROM || Date.now() - said < 1000) return;
        said = Date.now();
        process.stderr.write(`${name}: ${p.phase} ${count(p.done)} of ${count(p.total)}\n`);
      };
      let report: Awaited<ReturnType<typeof migrateToEntriesStore>>;
      try {
        report = await migrateToEntriesStore(kv, entries!, { onProgress });
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        const code =
          e instanceof VellumError && e.code === "STATE_MISMATCH" ? EXIT_EVIDENCE : EXIT_IO;
        return fail(
          `${name}: ${why}${code === EXIT_IO ? " (nothing is lost: run vellum migrate again)" : ""}`,
          code,
        );
      }
      if (report === undefined) continue;
      found++;
      const { from, size, resumed } = report;
      moved += report.leavesMoved;
      if (from === 3 && !resumed) {
        process.stdout.write(`${name}: ${count(size)} entries, already layout 3\n`);
        continue;
      }
      const rekeyed =
        report.leafHashesRekeyed > 0
          ? `, ${count(report.leafHashesRekeyed)} leaf-hash keys put under their eras`
          : "";
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(
        `${name}: ${count(size)} entries, layout ${from} → 3${resumed ? " (finishing a migration that was cut off)" : ""}: ${count(report.leavesMoved)} leaves moved to DATA/entries${rekeyed} (${seconds} s)\n`,
      );
    }
  } finally {
    await dbs.close();
  }
  if (found === 0)
    process.stdout.write(`no log is stored in ${join(dataDir, "db")}: nothing to move\n`);
  if (moved > 0) {
    process.stdout.write(
      `DATA/db: ${mib(dbBytesBefore)} before, ${mib(databaseBytes(join(dataDir, "db")))} after; DATA/entries: ${mib(databaseBytes(join(dataDir, "entries")))}\n`,
    );
  }
  return 0;
}

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description(
      "move a stopped server's logs made before layout 3 to it: their leaves into DATA/entries, where they are no longer rewritten as the log grows",
    )
    .option("--data <dir>", "data directory", DEFAULT_DATA)
    .addHelpText(
      "after",
      `\nSafe to cut off and run again: a log being moved does not open until it is finished.\n\nExample:\n  npx vellum migrate --data ./vellum-data\n${exitCodesHelp([0, 3, 4])}`,
    )
    .action(async (o: { data: string }) => {
      process.exitCode = await migrate(resolve(o.data));
    });
}
