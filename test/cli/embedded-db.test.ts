/**
 * A data directory's two databases (src/cli/embedded-db.ts): DATA/db and DATA/entries opened
 * together; an older directory without DATA/entries opened as it is; a held directory refused
 * with nothing left open.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  databasePaths,
  type EmbeddedDatabases,
  openEmbeddedDatabases,
} from "../../src/cli/embedded-db.js";
import { Log } from "../../src/log/log.js";
import { LAYOUT_KEY } from "../../src/storage/kv-log-layout.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { codeOfAsync } from "../helpers/errors.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function dataDir() {
  const dir = await mkdtemp(join(tmpdir(), "vellum-embedded-"));
  dirs.push(dir);
  return databasePaths(dir);
}

const SEED = new Uint8Array(32).fill(3);
const utf8 = (s: string) => new TextEncoder().encode(s);
const ORIGIN = "example.com/e";

/** The "e" (leaf) keys of a namespace. */
const leafRows = (kv: KeyValueStore) =>
  kv.range({ gte: Uint8Array.of(0x65), lt: Uint8Array.of(0x66) });

/** Reopens the log at `place` and reads its size and one entry's payload. */
async function readBack(place: ReturnType<EmbeddedDatabases["place"]>, index: number) {
  const log = await Log.open({ origin: ORIGIN, seed: SEED, ...place });
  try {
    return { size: log.size, payload: (await log.entry(index)).payload };
  } finally {
    await log.close();
  }
}

describe("the embedded databases of a data directory", () => {
  it("creates both, and a log opened in them keeps its leaves in DATA/entries (layout 3)", async () => {
    const paths = await dataDir();
    const dbs = await openEmbeddedDatabases(paths);
    expect(existsSync(paths.dbPath) && existsSync(paths.entriesPath)).toBe(true);
    const log = await Log.open({ origin: ORIGIN, seed: SEED, ...dbs.place("log") });
    await log.submitMany([utf8("a"), utf8("b")]);
    await log.close();
    expect(await dbs.db.namespace("log").get(LAYOUT_KEY)).toEqual(Uint8Array.of(3));
    // The leaves are in the entries database's namespace of the same name, not beside the tree.
    expect(await leafRows(dbs.entries!.namespace("log"))).toHaveLength(2);
    expect(await leafRows(dbs.db.namespace("log"))).toEqual([]);
    await dbs.close();
    // Reopened, the log reads them back.
    const again = await openEmbeddedDatabases(paths, { createIfMissing: false });
    expect(await readBack(again.place("log"), 1)).toEqual({ size: 2, payload: utf8("b") });
    await again.close();
  });

  it("opens a directory made before DATA/entries as it is, without creating it", async () => {
    const paths = await dataDir();
    const old = await openLevelDatabase(paths.dbPath);
    const store = new KvLogStore(old.namespace("log"));
    const log = await Log.open({ origin: ORIGIN, seed: SEED, store });
    await log.submit(utf8("old"));
    await log.close();
    await old.close();
    const dbs = await openEmbeddedDatabases(paths, { createIfMissing: false });
    expect(dbs.entries).toBeUndefined();
    expect(existsSync(paths.entriesPath)).toBe(false);
    expect(dbs.place("log")).not.toHaveProperty("entries");
    expect(await readBack(dbs.place("log"), 0)).toEqual({ size: 1, payload: utf8("old") });
    await dbs.close();
  });

  it("refuses a directory another open holds (LOCKED), and leaves nothing open", async () => {
    const paths = await dataDir();
    const held = await openLevelDatabase(paths.entriesPath);
    expect(await codeOfAsync(openEmbeddedDatabases(paths))).toBe("LOCKED");
    await held.close();
    // DATA/db was closed when DATA/entries failed: both open now.
    const dbs = await openEmbeddedDatabases(paths);
    await dbs.close();
  });
});
