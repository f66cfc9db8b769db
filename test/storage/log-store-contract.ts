/**
 * The LogStore contract (src/storage/log-store.ts) as a suite every implementation runs: the
 * embedded KvLogStore over memory and over LevelDB here, and any later backend (PostgreSQL +
 * object store) through the same function. Each test gets a fresh, empty store; `reopen` (when
 * the implementation has one) closes it and opens the same data again, to show what is durable.
 */
import { afterEach, describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { encodeLeafAndHash } from "../../src/core/entry.js";
import { rangeNodes } from "../../src/core/merkle.js";
import {
  type BatchWrite,
  EntryBatch,
  type EntryWrite,
  type LogStore,
} from "../../src/storage/log-store.js";

export interface LogStoreFixture {
  readonly store: LogStore;
  /** Closes the store and opens the same data again. */
  readonly reopen: () => Promise<LogStore>;
  readonly cleanup: () => Promise<void>;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const hash = (s: string) => sha256(utf8(s));

/** Entry `index` of the test batches: a real leaf, its id, hashes and (optional) key. */
function entry(index: number, key?: string): EntryWrite {
  const id = new Uint8Array(16)
    .fill(0)
    .map((_, i) => (i === 15 ? index & 0xff : i === 14 ? index >> 8 : 0));
  const payload = utf8(`payload ${index}`);
  const { leaf, leafHash } = encodeLeafAndHash({
    id,
    timestamp: 1_700_000_000_000 + index,
    submitter: undefined,
    payload,
  });
  return {
    index,
    leaf,
    id,
    leafHash,
    payloadHash: sha256(payload),
    keyHash: key === undefined ? undefined : hash(key),
  };
}

function batch(start: number, count: number, extra: Partial<BatchWrite> = {}): BatchWrite {
  const entries = Array.from({ length: count }, (_, i) =>
    entry(start + i, i === 0 ? `key-${start}` : undefined),
  );
  return {
    entries: EntryBatch.of(entries),
    keyAliases: [],
    strata: [{ level: 0, index: 0, bytes: utf8(`stratum after ${start + count}`) }],
    state: { size: start + count, compact: compactOf(start + count) },
    checkpoint: { size: start + count, note: `checkpoint ${start + count}\n` },
    ...extra,
  };
}

/** A packed batch's entries, one by one. */
function entries(b: EntryBatch): EntryWrite[] {
  return Array.from({ length: b.count }, (_, i) => ({
    index: b.start + i,
    leaf: b.leaf(i),
    id: b.id(i),
    leafHash: b.leafHash(i),
    payloadHash: b.payloadHash(i),
    keyHash: b.keyHash(i),
  }));
}

const payloadHashes = (b: EntryBatch) => entries(b).map((e) => e.payloadHash!);

/** Stand-in compact-range hashes of the right count for `size` (one per set bit). */
const compactOf = (size: number) =>
  rangeNodes(0, size).map((n) => hash(`node ${n.level}/${n.index}`));

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && bytesEqual(a, b);

export function describeLogStore(name: string, open: () => Promise<LogStoreFixture>): void {
  describe(`LogStore contract: ${name}`, () => {
    let fixture: LogStoreFixture | undefined;
    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });
    const fresh = async () => {
      fixture = await open();
      return fixture.store;
    };

    it("starts empty, and holds a new log's rule, state and first checkpoint after create", async () => {
      const store = await fresh();
      expect(await store.load()).toEqual({
        state: undefined,
        latestCheckpoint: undefined,
        dedup: undefined,
        holdsData: false,
      });
      await store.create("key", "checkpoint 0\n");
      const loaded = await store.load();
      expect(loaded).toMatchObject({
        latestCheckpoint: "checkpoint 0\n",
        dedup: "key",
        holdsData: true,
      });
      expect(loaded.state?.size).toBe(0);
      expect(loaded.state?.compact).toEqual([]);
      await store.setDedup("payload");
      expect((await store.load()).dedup).toBe("payload");
    });

    it("commits a batch as a whole: entries, every lookup key, strata, state and checkpoint", async () => {
      const store = await fresh();
      await store.create("payload", "checkpoint 0\n");
      const b = batch(0, 5);
      await store.commit(b);
      const loaded = await store.load();
      expect(loaded.state?.size).toBe(5);
      expect(same(loaded.state?.compact[0], b.state!.compact[0])).toBe(true);
      expect(loaded.latestCheckpoint).toBe("checkpoint 5\n");
      expect(await store.checkpoint(5)).toBe("checkpoint 5\n");
      expect(await store.checkpoint(4)).toBeUndefined();

      const leaves = await store.leaves([0, 4, 5]);
      expect(same(leaves[0], b.entries.leaf(0))).toBe(true);
      expect(same(leaves[1], b.entries.leaf(4))).toBe(true);
      expect(leaves[2]).toBeUndefined();
      const range = await store.leafRange(1, 4);
      expect(range.map(([i]) => i)).toEqual([1, 2, 3]);
      expect(range.every(([i, leaf]) => same(leaf, b.entries.leaf(i)))).toBe(true);

      expect(await store.findById(b.entries.id(3))).toBe(3);
      expect(await store.findByLeafHash(b.entries.leafHash(2))).toBe(2);
      expect(await store.findByPayload(payloadHashes(b.entries))).toEqual([0, 1, 2, 3, 4]);
      expect(await store.findByKey([hash("key-0"), hash("nobody")])).toEqual([0, undefined]);
      expect(await store.findById(new Uint8Array(16).fill(9))).toBeUndefined();
      expect(await store.findByLeafHash(hash("nothing"))).toBeUndefined();
      expect(same(await store.stratum(0, 0), b.strata[0]!.bytes)).toBe(true);
      expect(await store.stratum(1, 0)).toBeUndefined();
    });

    it("writes a payload lookup only for entries that carry a payload hash (key dedup writes none)", async () => {
      const store = await fresh();
      await store.create("key", "checkpoint 0\n");
      const b = batch(0, 2);
      await store.commit({
        ...b,
        entries: EntryBatch.of(entries(b.entries).map((e) => ({ ...e, payloadHash: undefined }))),
      });
      expect(await store.findByPayload(payloadHashes(b.entries))).toEqual([undefined, undefined]);
    });

    it("stores key aliases of a batch that adds no entry, without touching state or checkpoints", async () => {
      const store = await fresh();
      await store.create("key", "checkpoint 0\n");
      await store.commit(batch(0, 3));
      await store.commit({
        entries: EntryBatch.of([]),
        keyAliases: [{ keyHash: hash("retry key"), index: 1 }],
        strata: [],
        state: undefined,
        checkpoint: undefined,
      });
      expect(await store.findByKey([hash("retry key")])).toEqual([1]);
      expect((await store.load()).state?.size).toBe(3);
      expect((await store.load()).latestCheckpoint).toBe("checkpoint 3\n");
    });

    it("lists recent checkpoints largest size first, and swaps a size's note only from the expected one", async () => {
      const store = await fresh();
      await store.create("key", "checkpoint 0\n");
      await store.commit(batch(0, 2));
      await store.commit(batch(2, 3));
      expect(await store.recentCheckpoints(2)).toEqual(["checkpoint 5\n", "checkpoint 2\n"]);
      expect(await store.recentCheckpoints(10)).toEqual([
        "checkpoint 5\n",
        "checkpoint 2\n",
        "checkpoint 0\n",
      ]);
      // Compare-and-swap: refused from a stale note, nothing changes.
      expect(await store.putCheckpoint(5, "cosigned 5\n", "not what is stored\n")).toBe(false);
      expect(await store.checkpoint(5)).toBe("checkpoint 5\n");
      expect(await store.putCheckpoint(5, "cosigned 5\n", "checkpoint 5\n")).toBe(true);
      expect(await store.checkpoint(5)).toBe("cosigned 5\n");
      // Unconditional (a re-sign of the same tree).
      expect(await store.putCheckpoint(5, "re-signed 5\n")).toBe(true);
      expect((await store.load()).latestCheckpoint).toBe("re-signed 5\n");
    });

    it("keeps every committed batch across a reopen", async () => {
      const store = await fresh();
      await store.create("payload", "checkpoint 0\n");
      const b = batch(0, 4);
      await store.commit(b);
      await store.putCheckpoint(4, "cosigned 4\n", "checkpoint 4\n");
      const again = await fixture!.reopen();
      const loaded = await again.load();
      expect(loaded).toMatchObject({
        latestCheckpoint: "cosigned 4\n",
        dedup: "payload",
        holdsData: true,
      });
      expect(loaded.state?.size).toBe(4);
      expect((await again.leafRange(0, 10)).map(([i]) => i)).toEqual([0, 1, 2, 3]);
      expect(await again.findById(b.entries.id(2))).toBe(2);
    });
  });
}
