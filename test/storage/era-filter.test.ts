/**
 * The filters of a layout-2 log's finished eras (src/storage/era-filter.ts, era-filters.ts): the
 * filter never misses, its false positives are rare, it is built the same way from memory and
 * from storage, and a lookup asks only the eras it names.
 */

import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bytesEqual, concatBytes } from "../../src/core/bytes.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import {
  blockMayHold,
  EraFilter,
  FILTER_BLOCK_BYTES,
  FILTER_BLOCKS,
  filterBlockOf,
} from "../../src/storage/era-filter.js";
import { ERA_SIZE, FILTERED_KEY, filterKey } from "../../src/storage/kv-log-layout.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import type { BatchWrite } from "../../src/storage/log-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { standInState } from "../helpers/tree-state.js";

/** A deterministic leaf hash per index (SHA-256 of a seed and the index). */
const hashOf = (seed: string, index: number) =>
  new Uint8Array(createHash("sha256").update(`${seed}/${index}`).digest());

describe("EraFilter", () => {
  it("holds every hash added, and rules out all but about 1 in 1,000 others", () => {
    const filter = new EraFilter();
    for (let i = 0; i < ERA_SIZE; i++) filter.add(hashOf("in", i));
    for (let i = 0; i < ERA_SIZE; i += 97) {
      const h = hashOf("in", i);
      expect(blockMayHold(filter.block(filterBlockOf(h)), h)).toBe(true);
    }
    let positives = 0;
    const tries = 200_000;
    for (let i = 0; i < tries; i++) {
      const h = hashOf("out", i);
      if (blockMayHold(filter.block(filterBlockOf(h)), h)) positives++;
    }
    // 16 bits per entry and 8 probes in 512-bit blocks: about 0.1 % (measured 0.06-0.1 %).
    expect(positives / tries).toBeLessThan(0.002);
    expect(positives).toBeGreaterThan(0);
  });

  it("adds a hash at an offset of a packed buffer like a hash on its own", () => {
    const a = new EraFilter();
    const b = new EraFilter();
    const packed = new Uint8Array(3 * 32);
    for (let i = 0; i < 3; i++) {
      const h = hashOf("packed", i);
      packed.set(h, i * 32);
      a.add(h);
    }
    for (let i = 0; i < 3; i++) b.add(packed, i * 32);
    expect(bytesEqual(b.bits, a.bits)).toBe(true);
    expect(a.bits.some((x) => x !== 0)).toBe(true);
  });

  it("rules a hash out when one of its bits is cleared", () => {
    const filter = new EraFilter();
    const h = hashOf("one", 0);
    filter.add(h);
    const block = filter.block(filterBlockOf(h)).slice();
    expect(block.length).toBe(FILTER_BLOCK_BYTES);
    const set = block.findIndex((x) => x !== 0);
    block[set] = block[set]! & (block[set]! - 1); // clears the lowest set bit
    expect(blockMayHold(block, h)).toBe(false);
  });
});

describe("KvLogStore's era filters", () => {
  /** A batch of entries at [start, start + n) with hashOf(seed, index) as leaf hashes. */
  const batchAt = (seed: string, start: number, n: number): BatchWrite => ({
    entries: EntryBatch.of(
      Array.from({ length: n }, (_, i) => ({
        index: start + i,
        leaf: Uint8Array.of(1, 2, 3),
        id: hashOf(`${seed}-id`, start + i).subarray(0, 16),
        leafHash: hashOf(seed, start + i),
      })),
    ),
    keyAliases: [],
    strata: [],
    state: standInState(start + n),
    checkpoint: undefined,
  });

  /** Commits entries [from, to) in batches of 16,384. */
  async function fill(store: KvLogStore, seed: string, from: number, to: number) {
    for (let at = from; at < to; at += 16_384) {
      await store.commit(batchAt(seed, at, Math.min(16_384, to - at)));
    }
  }

  /** Era `era`'s stored blocks, in block order, as one buffer. */
  const storedFilter = async (kv: KeyValueStore, era: number) => {
    const keys = Array.from({ length: FILTER_BLOCKS }, (_, b) => filterKey(b, era));
    return concatBytes(...(await kv.getMany(keys)).map((v) => v ?? new Uint8Array(0)));
  };
  /** The filter of a full era 0 of seed "a", built directly. */
  let eraZero: EraFilter | undefined;
  const expectedEraZero = () => {
    if (eraZero === undefined) {
      eraZero = new EraFilter();
      for (let i = 0; i < ERA_SIZE; i++) eraZero.add(hashOf("a", i));
    }
    return eraZero.bits;
  };

  // The full-era tests run on LevelDB: 2^18 entries in the memory driver take half a minute.
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  const level = async () => {
    const dir = await mkdtemp(join(tmpdir(), "vellum-era-filter-"));
    dirs.push(dir);
    return openLevelDatabase(dir);
  };

  /** Counts the era keys ("h" u32 era leaf hash) each getMany asks for. */
  function counting(kv: KeyValueStore): { kv: KeyValueStore; eras: number[][] } {
    const eras: number[][] = [];
    const wrapped: KeyValueStore = {
      get: (k) => kv.get(k),
      getMany: (keys) => {
        const asked = keys.filter((k) => k[0] === 0x68 && k.length === 37);
        if (asked.length > 0) {
          eras.push(asked.map((k) => new DataView(k.buffer, k.byteOffset).getUint32(1)));
        }
        return kv.getMany(keys);
      },
      range: (o) => kv.range(o),
      write: (ops) => kv.write(ops),
      writePuts: kv.writePuts?.bind(kv),
      recover: () => kv.recover(),
      close: () => kv.close(),
    };
    return { kv: wrapped, eras };
  }

  it("writes a filled era's filter, and a lookup asks only that era and the open one", async () => {
    const db = await level();
    const { kv, eras } = counting(db.namespace("log"));
    const store = new KvLogStore(kv);
    await store.create("key", "checkpoint 0\n");
    await fill(store, "a", 0, ERA_SIZE + 5);
    await store.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toEqual(Uint8Array.of(0, 0, 0, 1));
    expect(bytesEqual(await storedFilter(kv, 0), expectedEraZero())).toBe(true);
    expect(await kv.get(filterKey(0, 1))).toBeUndefined();

    for (const index of [0, 12_345, ERA_SIZE - 1, ERA_SIZE, ERA_SIZE + 4]) {
      eras.length = 0;
      expect(await store.findByLeafHash(hashOf("a", index))).toBe(index);
      expect(eras).toEqual([[0, 1]].map((e) => (index < ERA_SIZE ? e : [1])));
    }
    // A hash the log does not hold: era 0's filter rules it out (all but ~1 in 1,000 times).
    eras.length = 0;
    expect(await store.findByLeafHash(hashOf("absent", 7))).toBeUndefined();
    expect(eras).toEqual([[1]]);
    await db.close();
  });

  it("builds an era from its stored keys after a restart, to the same bytes", async () => {
    // Restarted in the middle of era 0 (a new store on the same data: the open era's filter in
    // memory is lost), the era is built from its stored keys.
    const db = await level();
    const kv = db.namespace("log");
    const first = new KvLogStore(kv);
    await first.create("key", "checkpoint 0\n");
    await fill(first, "a", 0, 100_000);
    const second = new KvLogStore(kv);
    await second.load();
    await fill(second, "a", 100_000, ERA_SIZE);
    await second.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toEqual(Uint8Array.of(0, 0, 0, 1));
    expect(bytesEqual(await storedFilter(kv, 0), expectedEraZero())).toBe(true);
    expect(await second.findByLeafHash(hashOf("a", 99_999))).toBe(99_999);
    expect(await second.findByLeafHash(hashOf("a", 100_000))).toBe(100_000);
    await db.close();
  });

  it("writes, on load, the filters of finished eras that lack one, and empty eras rule all out", async () => {
    const db = new MemoryDatabase();
    const { kv, eras } = counting(db.namespace("log"));
    const store = new KvLogStore(kv);
    await store.create("key", "checkpoint 0\n");
    // Entries in era 0 and era 4, none in eras 1-3 (the store takes indices as given).
    await store.commit(batchAt("c", 0, 10));
    await store.commit(batchAt("c", 4 * ERA_SIZE, 10));
    await store.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toEqual(Uint8Array.of(0, 0, 0, 4));
    // The filter count lost (as if the process stopped before writing it): load writes them.
    await kv.write([{ type: "del", key: FILTERED_KEY }]);
    const reopened = new KvLogStore(kv);
    await reopened.load();
    await reopened.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toEqual(Uint8Array.of(0, 0, 0, 4));
    eras.length = 0;
    expect(await reopened.findByLeafHash(hashOf("c", 3))).toBe(3);
    expect(await reopened.findByLeafHash(hashOf("c", 4 * ERA_SIZE + 9))).toBe(4 * ERA_SIZE + 9);
    expect(eras).toEqual([[0, 4], [4]]);
    await db.close();
  });

  it("reads the blocks of every filter group (64 eras each), including one the store has not seen", async () => {
    const db = await level();
    const { kv, eras } = counting(db.namespace("log"));
    const store = new KvLogStore(kv);
    await store.create("key", "checkpoint 0\n");
    // Entries in era 0 (group 0), era 64 (group 1) and era 65, the open one.
    await store.commit(batchAt("g", 5, 10));
    await store.commit(batchAt("g", 64 * ERA_SIZE + 7, 10));
    await store.commit(batchAt("g", 65 * ERA_SIZE, 3));
    await store.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toEqual(Uint8Array.of(0, 0, 0, 65));
    expect(await kv.get(filterKey(0, 64))).toHaveLength(64);
    for (const handle of [store, new KvLogStore(kv)]) {
      eras.length = 0;
      expect(await handle.findByLeafHash(hashOf("g", 64 * ERA_SIZE + 9))).toBe(64 * ERA_SIZE + 9);
      expect(await handle.findByLeafHash(hashOf("g", 6))).toBe(6);
      expect(eras).toEqual([
        [64, 65],
        [0, 65],
      ]);
    }
    await db.close();
  });

  it("asks every era whose filter block is missing or damaged", async () => {
    const db = new MemoryDatabase();
    const { kv, eras } = counting(db.namespace("log"));
    const store = new KvLogStore(kv);
    await store.create("key", "checkpoint 0\n");
    await store.commit(batchAt("d", 0, 10));
    await store.commit(batchAt("d", 3 * ERA_SIZE, 10));
    await store.filtersSettled();
    const target = hashOf("d", 5);
    const block = filterBlockOf(target);
    // Era 0's block lost, era 1's damaged: both are asked; era 2's (empty) rules it out.
    await kv.write([
      { type: "del", key: filterKey(block, 0) },
      { type: "put", key: filterKey(block, 1), value: randomBytes(3) },
    ]);
    eras.length = 0;
    expect(await store.findByLeafHash(target)).toBe(5);
    expect(eras).toEqual([[0, 1, 3]]);
    await db.close();
  });

  it("answers every lookup while a filter write fails, and writes the filters after recovery", async () => {
    let failNext = true;
    const db = new MemoryDatabase({
      faults: {
        // The first filter write (8,192 blocks and the count) fails; the store then refuses
        // writes until recover(), as after any failed write.
        write: (_ns, ops) => {
          if (!failNext || ops.length < FILTER_BLOCKS) return "ok";
          failNext = false;
          return "fail";
        },
      },
    });
    const { kv, eras } = counting(db.namespace("log"));
    const store = new KvLogStore(kv);
    await store.create("key", "checkpoint 0\n");
    await store.commit(batchAt("f", 0, 10));
    await store.commit(batchAt("f", 2 * ERA_SIZE, 5));
    await store.filtersSettled();
    expect(failNext).toBe(false);
    expect(await kv.get(FILTERED_KEY)).toBeUndefined();
    eras.length = 0;
    expect(await store.findByLeafHash(hashOf("f", 3))).toBe(3);
    expect(eras).toEqual([[0, 1, 2]]);

    await kv.recover();
    await store.commit(batchAt("f", 3 * ERA_SIZE, 5));
    await store.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toEqual(Uint8Array.of(0, 0, 0, 3));
    eras.length = 0;
    expect(await store.findByLeafHash(hashOf("f", 3))).toBe(3);
    expect(await store.findByLeafHash(hashOf("f", 2 * ERA_SIZE + 4))).toBe(2 * ERA_SIZE + 4);
    expect(eras).toEqual([
      [0, 3],
      [2, 3],
    ]);
    await db.close();
  });

  it("keeps no filters for a layout-1 log (no layout key)", async () => {
    const db = new MemoryDatabase();
    const kv = db.namespace("log");
    const store = new KvLogStore(kv);
    await store.commit(batchAt("e", 0, 10));
    await store.commit(batchAt("e", 2 * ERA_SIZE, 10));
    await store.filtersSettled();
    expect(await kv.get(FILTERED_KEY)).toBeUndefined();
    expect(await kv.range({ gte: Uint8Array.of(0x66), lt: Uint8Array.of(0x67) })).toEqual([]);
    expect(await store.findByLeafHash(hashOf("e", 2 * ERA_SIZE + 1))).toBe(2 * ERA_SIZE + 1);
    await db.close();
  });
});
