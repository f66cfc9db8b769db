/**
 * @module
 * The embedded store of a data directory: DATA/db (every log's lookup keys, tree, checkpoints,
 * and the server's own records) and DATA/entries (the leaves of logs created since it exists),
 * two LevelDB databases opened and closed together. Why two: kv-log-layout.ts, layout 3.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { openLevelDatabase } from "../storage/level.js";
import type { Database, KeyValueStore } from "../storage/types.js";

/**
 * The entries database reads leaves in runs (entry bundles, ranges) and rarely twice: a smaller
 * block cache than DATA/db's, whose lookups and tiles are read again and again.
 */
const ENTRIES_CACHE_SIZE = 16 * 1024 * 1024;

/**
 * Open tables of the entries database: each holds its index and Bloom-filter blocks in memory,
 * and its reads are runs of recent leaves, so a few suffice (LevelDB's default is 1,000).
 */
const ENTRIES_OPEN_FILES = 100;

export interface DatabasePaths {
  readonly dbPath: string;
  readonly entriesPath: string;
}

/** Bytes on disk of a LevelDB database's directory (flat; a file a compaction removes meanwhile counts nothing). */
export function databaseBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    try {
      total += statSync(join(dir, name)).size;
    } catch {
      // Removed between the listing and here.
    }
  }
  return total;
}

/** Where a data directory keeps its two databases: DATA/db and DATA/entries. */
export const databasePaths = (dataDir: string): DatabasePaths => ({
  dbPath: join(dataDir, "db"),
  entriesPath: join(dataDir, "entries"),
});

export interface EmbeddedDatabases {
  readonly db: Database;
  /** Undefined only when opened without creating and the directory has none (made before it). */
  readonly entries: Database | undefined;
  /** Where the log `name` lives: its namespace in each database. */
  place(name: string): { kv: KeyValueStore; entries?: KeyValueStore };
  close(): Promise<void>;
}

/**
 * Opens both databases (by default creating them). With `createIfMissing: false`, DATA/db must
 * exist and DATA/entries is opened only if it does, or created if `createEntries` (to move a
 * log made before it there: vellum migrate). Throws what openLevelDatabase throws (LOCKED while
 * a server holds them); nothing is left open then.
 */
export async function openEmbeddedDatabases(
  paths: DatabasePaths,
  options: { readonly createIfMissing?: boolean; readonly createEntries?: boolean } = {},
): Promise<EmbeddedDatabases> {
  const create = options.createIfMissing ?? true;
  const createEntries = create || options.createEntries === true;
  const db = await openLevelDatabase(paths.dbPath, { createIfMissing: create });
  let entries: Database | undefined;
  try {
    if (createEntries || existsSync(paths.entriesPath)) {
      entries = await openLevelDatabase(paths.entriesPath, {
        createIfMissing: createEntries,
        cacheSize: ENTRIES_CACHE_SIZE,
        maxOpenFiles: ENTRIES_OPEN_FILES,
      });
    }
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return {
    db,
    entries,
    place: (name) =>
      entries === undefined
        ? { kv: db.namespace(name) }
        : { kv: db.namespace(name), entries: entries.namespace(name) },
    async close() {
      await Promise.all([db.close(), entries?.close()]);
    },
  };
}
