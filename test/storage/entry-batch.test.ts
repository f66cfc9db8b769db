/**
 * The packed batch the sequencer hands to storage (src/storage/entry-batch.ts): each entry's
 * leaf, id and hashes read back exactly as packed, with nothing of one entry in another's view.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { EntryBatch, type EntryWrite } from "../../src/storage/entry-batch.js";
import { codeOf } from "../helpers/errors.js";

function entries(
  start: number,
  sizes: readonly number[],
  keyed: (i: number) => boolean,
): EntryWrite[] {
  return sizes.map((size, i) => ({
    index: start + i,
    leaf: randomBytes(size),
    id: randomBytes(16),
    leafHash: randomBytes(32),
    keyHash: keyed(i) ? randomBytes(32) : undefined,
  }));
}

const hex = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : Buffer.from(b).toString("hex");

describe("EntryBatch", () => {
  it("gives back every entry as packed, each leaf after its spare byte", () => {
    const list = entries(1000, [0, 1, 300, 65_000, 5], (i) => i % 2 === 1);
    const batch = EntryBatch.of(list);
    expect(batch.start).toBe(1000);
    expect(batch.count).toBe(5);
    expect(batch.bytes.length).toBe(list.reduce((a, e) => a + 1 + e.leaf.length, 0));
    list.forEach((e, i) => {
      expect(hex(batch.leaf(i))).toBe(hex(e.leaf));
      expect(hex(batch.id(i))).toBe(hex(e.id));
      expect(hex(batch.leafHash(i))).toBe(hex(e.leafHash));
      expect(hex(batch.keyHash(i))).toBe(hex(e.keyHash));
      expect(batch.payloadHash(i)).toBeUndefined();
      // The spare byte before each leaf is outside every leaf's view.
      expect(batch.bytes[batch.leafStart(i) - 1]).toBe(0);
    });
    expect(batch.leaves().map(hex)).toEqual(list.map((e) => hex(e.leaf)));
    expect(batch.payloadHashes).toBeUndefined();
  });

  it("carries no per-entry key list when no entry has a key", () => {
    const batch = EntryBatch.of(entries(0, [10, 20], () => false));
    expect(batch.keyHashes).toBeUndefined();
    expect(batch.keyHash(1)).toBeUndefined();
  });

  it("is empty for no entries", () => {
    const batch = EntryBatch.of([], 7);
    expect(batch.count).toBe(0);
    expect(batch.start).toBe(7);
    expect(batch.leaves()).toEqual([]);
  });

  it("refuses entries whose indices do not run on, and parts that do not fit the count", () => {
    const list = entries(5, [3, 3], () => false);
    expect(codeOf(() => EntryBatch.of([list[0]!, { ...list[1]!, index: 7 }]))).toBe("INTERNAL");
    expect(codeOf(() => EntryBatch.of([{ ...list[0]!, id: new Uint8Array(15) }]))).toBe("INTERNAL");
    const good = EntryBatch.of(list);
    expect(codeOf(() => new EntryBatch({ ...good, count: 3 }))).toBe("INTERNAL");
    expect(
      codeOf(
        () => new EntryBatch({ ...good, bytes: good.bytes.subarray(0, good.bytes.length - 1) }),
      ),
    ).toBe("INTERNAL");
  });
});
