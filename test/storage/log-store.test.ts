/**
 * The embedded log store (KvLogStore) through the LogStore contract, over memory and LevelDB.
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openEmbeddedDatabases } from "../../src/cli/embedded-db.js";
import { utf8Encode } from "../../src/core/bytes.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import { idKey, LAYOUT_KEY } from "../../src/storage/kv-log-layout.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import type { BatchWrite } from "../../src/storage/log-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { codeOfAsync } from "../helpers/errors.js";
import { standInState } from "../helpers/tree-state.js";
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

describeLogStore("KvLogStore over memory, leaves in an entries store (layout 3)", async () => {
  const db = new MemoryDatabase();
  const entries = new MemoryDatabase();
  return {
    store: new KvLogStore(db.namespace("log"), entries.namespace("log")),
    reopen: async () => new KvLogStore(db.namespace("log"), entries.namespace("log")),
    cleanup: async () => {
      await db.close();
      await entries.close();
    },
  };
});

describeLogStore("KvLogStore over two LevelDB databases (layout 3)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vellum-logstore-"));
  const paths = { dbPath: join(dir, "db"), entriesPath: join(dir, "entries") };
  let dbs = await openEmbeddedDatabases(paths);
  const open = () => {
    const place = dbs.place("log");
    return new KvLogStore(place.kv, place.entries);
  };
  return {
    store: open(),
    reopen: async () => {
      await dbs.close();
      dbs = await openEmbeddedDatabases(paths);
      return open();
    },
    cleanup: async () => {
      await dbs.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** `n` entries from index `start` with random ids and leaf hashes, and a stand-in tree state. */
const batchAt = (start: number, n: number): BatchWrite => ({
  entries: EntryBatch.of(
    Array.from({ length: n }, (_, i) => ({
      index: start + i,
      leaf: utf8Encode(`leaf ${start + i}`),
      id: randomBytes(16),
      leafHash: randomBytes(32),
    })),
  ),
  keyAliases: [],
  strata: [],
  state: standInState(start + n),
  checkpoint: { size: start + n, note: `checkpoint ${start + n}\n` },
});

describe("KvLogStore with an entries store (layout 3)", () => {
  const entryKeys = async (kv: KeyValueStore) =>
    (await kv.range({ gte: Uint8Array.of(0x65), lt: Uint8Array.of(0x66) })).map(([k]) =>
      Number(new DataView(k.buffer, k.byteOffset).getBigUint64(1)),
    );
  const fresh = async () => {
    const db = new MemoryDatabase();
    const entries = new MemoryDatabase();
    const kv = db.namespace("log");
    const leafKv = entries.namespace("log");
    const store = new KvLogStore(kv, leafKv);
    await store.create("key", "checkpoint 0\n");
    return { db, entries, kv, leafKv, store };
  };

  it("keeps a new log's leaves in the entries store alone, and reads them from there", async () => {
    const { kv, leafKv, store } = await fresh();
    expect(await kv.get(LAYOUT_KEY)).toEqual(Uint8Array.of(3));
    const b = batchAt(0, 5);
    await store.commit(b);
    expect(await entryKeys(kv)).toEqual([]);
    expect(await entryKeys(leafKv)).toEqual([0, 1, 2, 3, 4]);
    expect(await store.leaves([4, 0, 7])).toEqual([
      b.entries.leaf(4),
      b.entries.leaf(0),
      undefined,
    ]);
    expect((await store.leafRange(1, 3)).map(([i]) => i)).toEqual([1, 2]);
    // The lookups stay beside the tree.
    expect(await store.findByLeafHash(b.entries.leafHash(3))).toBe(3);
    expect(await store.findById(b.entries.id(2))).toBe(2);
    // Another handle reads the layout before its first read of a leaf.
    expect(await new KvLogStore(kv, leafKv).leaves([3])).toEqual([b.entries.leaf(3)]);
  });

  it("writes the leaves before the batch: a batch whose own write fails leaves only leaves past the size, which load deletes", async () => {
    const { db, kv, leafKv, store } = await fresh();
    await store.commit(batchAt(0, 3));
    const order: string[] = [];
    const entriesWrite = leafKv.write.bind(leafKv);
    leafKv.write = (ops) => {
      order.push("leaves");
      return entriesWrite(ops);
    };
    db.faults = {
      write: () => {
        order.push("batch");
        return "fail";
      },
    };
    expect(await codeOfAsync(store.commit(batchAt(3, 4)))).toBe("STORAGE_FAILURE");
    expect(order).toEqual(["leaves", "batch"]);
    expect(await entryKeys(leafKv)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // After recovery the log reloads: the tree is still 3 entries, and the stray leaves go.
    db.faults = {};
    await store.recover();
    const reopened = new KvLogStore(kv, leafKv);
    expect((await reopened.load()).state?.size).toBe(3);
    expect(await entryKeys(leafKv)).toEqual([0, 1, 2]);
    // A later, smaller batch at the same indices leaves nothing behind.
    await reopened.commit(batchAt(3, 1));
    expect(await entryKeys(leafKv)).toEqual([0, 1, 2, 3]);
  });

  it("writes nothing beside the tree when the leaves' write fails", async () => {
    const { kv, entries, leafKv, store } = await fresh();
    entries.faults = { write: () => "fail" };
    const b = batchAt(0, 2);
    expect(await codeOfAsync(store.commit(b))).toBe("STORAGE_FAILURE");
    expect((await new KvLogStore(kv, leafKv).load()).state?.size).toBe(0);
    expect(await kv.get(idKey(b.entries.id(0)))).toBeUndefined();
    expect(await entryKeys(leafKv)).toEqual([]);
  });

  it("refuses to open a log of layout 3 without its entries store (STATE_MISMATCH)", async () => {
    const { kv } = await fresh();
    const alone = new KvLogStore(kv);
    expect(await codeOfAsync(alone.load())).toBe("STATE_MISMATCH");
    expect(await codeOfAsync(alone.leaves([0]))).toBe("STATE_MISMATCH");
  });

  it("keeps a log created without one (layout 2) as it is, even when opened with one", async () => {
    const kv = new MemoryDatabase().namespace("log");
    const leafKv = new MemoryDatabase().namespace("log");
    await new KvLogStore(kv).create("key", "checkpoint 0\n");
    const store = new KvLogStore(kv, leafKv);
    const b = batchAt(0, 2);
    await store.commit(b);
    expect(await kv.get(LAYOUT_KEY)).toEqual(Uint8Array.of(2));
    expect(await entryKeys(kv)).toEqual([0, 1]);
    expect(await entryKeys(leafKv)).toEqual([]);
    expect(await store.leaves([1])).toEqual([b.entries.leaf(1)]);
  });
});

describe("KvLogStore's leaf-hash index by era (layout 2)", () => {
  const ERA = 2 ** 18;
  const leafHashOf = (b: BatchWrite, i: number) => b.entries.leafHash(i);
  const hKeys = async (kv: KeyValueStore) =>
    (await kv.range({ gte: Uint8Array.of(0x68), lt: Uint8Array.of(0x69) })).map(([k]) => k);

  it("keys a new log's leaf hashes under their era, and finds them in every era", async () => {
    const kv = new MemoryDatabase().namespace("log");
    const store = new KvLogStore(kv);
    await store.create("key", "checkpoint 0\n");
    expect(await kv.get(LAYOUT_KEY)).toEqual(Uint8Array.of(2));
    const first = batchAt(0, 3);
    await store.commit(first);
    // Two entries at the end of era 2 and two at the start of era 3 (the store takes indices as
    // given), with era 1 empty.
    const later = batchAt(3 * ERA - 2, 4);
    await store.commit(later);
    const keys = await hKeys(kv);
    expect(keys.every((k) => k.length === 37)).toBe(true);
    expect(keys.map((k) => new DataView(k.buffer, k.byteOffset).getUint32(1)).sort()).toEqual([
      0, 0, 0, 2, 2, 3, 3,
    ]);
    expect(await store.findByLeafHash(leafHashOf(first, 1))).toBe(1);
    expect(await store.findByLeafHash(leafHashOf(later, 0))).toBe(3 * ERA - 2);
    expect(await store.findByLeafHash(leafHashOf(later, 3))).toBe(3 * ERA + 1);
    expect(await store.findByLeafHash(randomBytes(32))).toBeUndefined();
    // Another handle reads the layout from the store.
    expect(await new KvLogStore(kv).findByLeafHash(leafHashOf(later, 2))).toBe(3 * ERA);
  });

  it("keeps layout 1 for a log made before it (no layout key): written and found as before", async () => {
    const kv = new MemoryDatabase().namespace("log");
    const store = new KvLogStore(kv);
    const b = batchAt(0, 3);
    await store.commit(b);
    expect(await kv.get(LAYOUT_KEY)).toBeUndefined();
    expect((await hKeys(kv)).every((k) => k.length === 33)).toBe(true);
    expect(await store.findByLeafHash(leafHashOf(b, 2))).toBe(2);
  });

  it("refuses a store whose layout key it does not know (STATE_MISMATCH)", async () => {
    const kv = new MemoryDatabase().namespace("log");
    await kv.write([{ type: "put", key: LAYOUT_KEY, value: Uint8Array.of(9) }]);
    const store = new KvLogStore(kv);
    expect(await codeOfAsync(store.findByLeafHash(randomBytes(32)))).toBe("STATE_MISMATCH");
    expect(await codeOfAsync(store.commit(batchAt(0, 1)))).toBe("STATE_MISMATCH");
  });
});
