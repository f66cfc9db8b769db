/**
 * @module
 * `vellum index rebuild`: drops a stopped server's derived index (DATA/index) and rebuilds it
 * from the log, then checks that the rebuilt map is the one the index log's latest revision
 * committed (src/indexing/engine.ts, Indexer.open). Exit 0 when it is; 3 when the replay makes
 * another map (the index log committed something the log does not say: evidence); 2 for usage;
 * 4 when the directory cannot be used (in use by a server, not a data directory).
 */
import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { hexEncode } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";
import { ChildIndexStore } from "../indexing/child-store.js";
import { Indexer } from "../indexing/engine.js";
import { Log } from "../log/log.js";
import { openDataDir } from "./datadir.js";
import { type EmbeddedDatabases, openEmbeddedDatabases } from "./embedded-db.js";
import { EXIT_EVIDENCE, EXIT_IO, exitCodesHelp } from "./exit-codes.js";
import { DEFAULT_DATA } from "./serve.js";
import { INDEX_DIR, openIndexLog } from "./serve-index.js";

async function rebuild(dataDir: string): Promise<number> {
  const fail = (message: string, code: number) => {
    process.stderr.write(`vellum index rebuild: ${message}\n`);
    return code;
  };
  if (!existsSync(join(dataDir, "log.key")) || !existsSync(join(dataDir, "db"))) {
    return fail(`${dataDir} is not a Vellum data directory (it needs log.key and db/)`, EXIT_IO);
  }
  const files = openDataDir(dataDir);
  let dbs: EmbeddedDatabases;
  try {
    dbs = await openEmbeddedDatabases(files, { createIfMissing: false });
  } catch (e) {
    if (e instanceof VellumError && e.code === "LOCKED") {
      return fail(`${dataDir} is in use by a running server: stop it first`, EXIT_IO);
    }
    throw e;
  }
  const started = Date.now();
  const log = await Log.open({
    origin: files.origin,
    seed: files.seed,
    ...dbs.place("log"),
    checkpointIntervalMs: 0,
  });
  const indexLog = await openIndexLog(dbs.place("index-log"), files.origin, files.seed);
  const storePath = join(dataDir, INDEX_DIR);
  rmSync(storePath, { recursive: true, force: true });
  const store = await ChildIndexStore.open(storePath, "event-keys");
  let code = 0;
  try {
    const indexer = await Indexer.open({ source: log, indexLog, store });
    const last = indexer.published;
    process.stdout.write(
      last === undefined
        ? `rebuilt the index of ${log.size} entries: the index log has no revision yet (the server commits one when it starts)\n`
        : `rebuilt the index from the log in ${Date.now() - started} ms: at ${last.revision.logSize} entries its map root ${hexEncode(last.revision.mapRoot)} is the one the index log's revision ${last.leafIndex} committed\n` +
            (log.size > last.revision.logSize
              ? `the server indexes the ${log.size - last.revision.logSize} entries after it when it starts\n`
              : ""),
    );
  } catch (e) {
    if (!(e instanceof VellumError) || e.code !== "STATE_MISMATCH") throw e;
    code = fail(e.message, EXIT_EVIDENCE);
  } finally {
    await store.close();
    await indexLog.close();
    await log.close();
    await dbs.close();
  }
  return code;
}

export function registerIndex(program: Command): void {
  const index = program
    .command("index")
    .description("the verifiable index of events (DATA/index): derived from the log, rebuildable");
  index
    .command("rebuild")
    .description(
      "drop a stopped server's index and rebuild it from the log; check it equals the index log's latest revision",
    )
    .option("--data <dir>", "data directory", DEFAULT_DATA)
    .addHelpText(
      "after",
      `\nExample:\n  npx vellum index rebuild --data ./vellum-data\n${exitCodesHelp([0, 2, 3, 4])}`,
    )
    .action(async (o: { data: string }) => {
      process.exitCode = await rebuild(resolve(o.data));
    });
}
