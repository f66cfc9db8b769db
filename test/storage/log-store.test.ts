/**
 * The embedded log store (KvLogStore) through the LogStore contract, over memory and LevelDB.
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { utf8Encode } from "../../src/core/bytes.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import { LAYOUT_KEY } from "../../src/storage/kv-log-layout.js";
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

describe("KvLogStore's leaf-hash index by era (layout 2)", () => {
  const ERA = 2 ** 18;
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
    checkpoint: undefined,
  });
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
