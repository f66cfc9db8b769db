/**
 * The parts of taking a layout-3 batch back out (src/storage/batch-undo.ts, stratum-bytes.ts):
 * the undo record round-trips and refuses damage; and the strata a batch wrote, with what each
 * was before, are exactly those the real tree wrote, checked against Tree.append itself over
 * sizes that cross tile boundaries at both tile levels.
 */
import { describe, expect, it } from "vitest";
import { hexEncode as hex } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { Tree } from "../../src/log/tree.js";
import { decodeUndo, encodeUndo } from "../../src/storage/batch-undo.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import { idempotencyKey, payloadKey } from "../../src/storage/kv-log-layout.js";
import { rollbackStrata, truncateStratum } from "../../src/storage/stratum-bytes.js";
import { encodeState } from "../../src/storage/tree-state.js";

const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => seed + i);

function batchOf(start: number, count: number, withHashes: boolean): EntryBatch {
  return EntryBatch.of(
    Array.from({ length: count }, (_, i) => ({
      index: start + i,
      leaf: bytesOf(10, i),
      id: bytesOf(16, 3 * i),
      leafHash: bytesOf(32, 5 * i),
      payloadHash: withHashes ? bytesOf(32, 7 * i) : undefined,
      keyHash: withHashes && i % 2 === 0 ? bytesOf(32, 11 * i) : undefined,
    })),
  );
}

describe("the undo record", () => {
  const stateBefore = encodeState({ size: 5, compact: [bytesOf(32, 1), bytesOf(32, 2)] });

  it("round-trips every key the batch put, aliases included", () => {
    const batch = batchOf(5, 4, true);
    const alias = bytesOf(32, 200);
    const undo = decodeUndo(encodeUndo(9, stateBefore, batch, [alias]));
    expect(undo.sizeAfter).toBe(9);
    expect(undo.start).toBe(5);
    expect(undo.count).toBe(4);
    expect(hex(undo.stateBefore)).toBe(hex(stateBefore));
    expect(hex(undo.ids)).toBe(hex(batch.ids.subarray(0, 64)));
    expect(hex(undo.leafHashes)).toBe(hex(batch.leafHashes.subarray(0, 128)));
    // Each is the lookup key the batch put (kv-log-layout.ts), in entry order, then the aliases.
    const expected = [
      payloadKey(batch.payloadHash(0)!),
      idempotencyKey(batch.keyHash(0)!),
      payloadKey(batch.payloadHash(1)!),
      payloadKey(batch.payloadHash(2)!),
      idempotencyKey(batch.keyHash(2)!),
      payloadKey(batch.payloadHash(3)!),
      idempotencyKey(alias),
    ].map(hex);
    expect(undo.hashedKeys.map(hex)).toEqual(expected);
  });

  it("holds no hashed keys for a batch without payload or key hashes", () => {
    const undo = decodeUndo(encodeUndo(7, stateBefore, batchOf(5, 2, false), []));
    expect(undo.hashedKeys).toEqual([]);
  });

  it("refuses a damaged record", () => {
    const good = encodeUndo(9, stateBefore, batchOf(5, 4, true), []);
    const bad: [string, Uint8Array][] = [
      ["truncated", good.subarray(0, good.length - 1)],
      ["longer", Uint8Array.of(...good, 0)],
      ["another version", Uint8Array.of(2, ...good.subarray(1))],
      ["empty", new Uint8Array(0)],
    ];
    const wrongSize = good.slice();
    wrongSize[8] = 10; // size after: 10, while the batch ends at 9
    bad.push(["a size its batch does not end at", wrongSize]);
    const badTag = good.slice();
    badTag[badTag.length - 33] = 0x71;
    bad.push(["an unknown key tag", badTag]);
    for (const [why, bytes] of bad) {
      expect(() => decodeUndo(bytes), why).toThrow(/undo record/);
    }
  });
});

/** A tree grown to `before`, then to `after`: the strata stored at each point, by "level/index". */
async function strataOf(before: number, after: number) {
  const stored = new Map<string, Uint8Array>();
  const read = async (level: number, index: number) => stored.get(`${level}/${index}`);
  const tree = await Tree.load(read, 0, []);
  const leaf = (i: number) => sha256(Uint8Array.of(i & 0xff, (i >> 8) & 0xff, i >> 16));
  const grow = (from: number, to: number) => {
    const writes = tree.append(Array.from({ length: to - from }, (_, i) => leaf(from + i)));
    for (const w of writes) stored.set(`${w.level}/${w.index}`, w.bytes);
    return writes.map((w) => `${w.level}/${w.index}`);
  };
  // In a few batches, as a log would.
  for (let at = 0; at < before; at = Math.min(before, at + 3000)) {
    grow(at, Math.min(before, at + 3000));
  }
  const beforeStrata = new Map(stored);
  const written = grow(before, after);
  return { beforeStrata, afterStrata: stored, written };
}

describe("rolling strata back", () => {
  const pairs: [number, number][] = [
    [0, 1],
    [1, 2],
    [5, 9],
    [250, 550],
    [255, 256],
    [256, 257],
    [256, 512],
    [511, 70_000],
    [0, 65_536],
    [65_535, 65_537],
    [65_536, 65_800],
    [65_636, 131_172],
  ];
  // And some drawn at random (seeded), small and large.
  let seed = 7;
  const next = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 8; i++) {
    const before = next(80_000);
    pairs.push([before, before + 1 + next(i % 2 === 0 ? 600 : 20_000)]);
  }

  it.each(pairs)(
    "names exactly the strata a batch from %i to %i wrote, as they were",
    async (before, after) => {
      const { beforeStrata, afterStrata, written } = await strataOf(before, after);
      const rollbacks = rollbackStrata(before, after);
      expect(rollbacks.map((r) => `${r.level}/${r.index}`).sort()).toEqual([...written].sort());
      for (const r of rollbacks) {
        const key = `${r.level}/${r.index}`;
        const was = beforeStrata.get(key);
        if (r.width === 0) {
          expect(was, `${key} existed before the batch`).toBeUndefined();
        } else {
          expect(was, `${key} did not exist before the batch`).toBeDefined();
          expect(hex(truncateStratum(afterStrata.get(key)!, r.width))).toBe(hex(was!));
        }
      }
    },
  );

  it("refuses to widen a stratum or cut it to nothing, and a damaged one", async () => {
    const { afterStrata } = await strataOf(0, 100);
    const tile = afterStrata.get("0/0")!;
    expect(() => truncateStratum(tile, 101)).toThrow(/cannot be rolled back/);
    expect(() => truncateStratum(tile, 0)).toThrow(/cannot be rolled back/);
    expect(() => truncateStratum(tile.subarray(0, tile.length - 1), 50)).toThrow(/bad length/);
  });
});
