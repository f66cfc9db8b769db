/**
 * The embedded log store (KvLogStore) through the LogStore contract, over memory and LevelDB.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { describeLogStore } from "./log-store-contract.js";

describeLogStore("KvLogStore over memory", async () => {
  const db = new MemoryDatabase();
  return {
    store: new KvLogStore(db.namespace("log")),
    reopen: async () => new KvLogStore(db.namespace("log")),
    cleanup: async () => db.close(),
  };
});

describeLogStore("KvLogStore over LevelDB", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vellum-logstore-"));
  let db = await openLevelDatabase(dir);
  return {
    store: new KvLogStore(db.namespace("log")),
    reopen: async () => {
      await db.close();
      db = await openLevelDatabase(dir);
      return new KvLogStore(db.namespace("log"));
    },
    cleanup: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
