/**
 * A log's data directory made the way `vellum serve` makes it (src/cli/datadir.ts: key files,
 * DATA/checkpoint, LevelDB in db/, the log in namespace "log"), in-process, so tests can fill it,
 * damage it through the storage API or its files, and run `vellum fsck` on it.
 */
import { join } from "node:path";
import { openDataDir } from "../../src/cli/datadir.js";
import { readMarkers } from "../../src/cli/marker.js";
import { Log, type LogConfig } from "../../src/log/log.js";
import { writeFileDurably } from "../../src/platform/durable-file.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import type { Database } from "../../src/storage/types.js";

export const DATA_ORIGIN = "test.example/data-dir";

/** Opens (creating on first use) the log in `dir`, with DATA/checkpoint kept as serve keeps it. */
export async function openDataLog(
  dir: string,
  config: Partial<LogConfig> = {},
): Promise<{ log: Log; db: Database; close: () => Promise<void> }> {
  const files = openDataDir(dir, { origin: DATA_ORIGIN });
  const { lastPublished } = readMarkers(dir);
  const db = await openLevelDatabase(files.dbPath);
  const log = await Log.open({
    origin: files.origin,
    seed: files.seed,
    kv: db.namespace("log"),
    checkpointIntervalMs: 0,
    ...(lastPublished === undefined ? {} : { lastPublished }),
    onCheckpoint: (cp) => writeFileDurably(join(dir, "checkpoint"), cp.note),
    ...config,
  });
  return {
    log,
    db,
    close: async () => {
      await log.close();
      await db.close();
    },
  };
}

/** Opens `dir`'s database alone (no log), e.g. to damage it through the storage API. */
export function openDataDb(dir: string): Promise<Database> {
  return openLevelDatabase(join(dir, "db"), { createIfMissing: false });
}
