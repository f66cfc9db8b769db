/**
 * Multiproofs against the naive RFC 6962 definitions: for many trees and leaf sets, the expanded
 * proofs are exactly each leaf's PATH and the root exactly MTH; any change to a sent hash, a
 * missing or extra hash, or bad indices is refused.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import { expandMultiproof, multiproofRanges } from "../../src/core/multiproof.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { verifyInclusion } from "../../src/core/verify.js";
import { codeOf } from "../helpers/errors.js";
import { mth, path } from "../helpers/naive-merkle.js";

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => Uint8Array.of(i & 255, i >> 8));

/** The hashes a server sends: MTH of each range, straight from the leaves. */
const send = (leaves: Uint8Array[], indices: number[]) =>
  multiproofRanges(indices, leaves.length).map(([s, e]) => mth(leaves.slice(s, e)));

function check(leaves: Uint8Array[], indices: number[]) {
  const hashes = send(leaves, indices);
  const { root, proofs } = expandMultiproof(
    indices,
    indices.map((i) => hashLeaf(leaves[i]!)),
    leaves.length,
    hashes,
  );
  expect(bytesEqual(root, mth(leaves))).toBe(true);
  indices.forEach((index, i) => {
    const want = path(index, leaves);
    expect(proofs[i]!.length, `proof of ${index} in ${leaves.length}`).toBe(want.length);
    proofs[i]!.forEach((h, j) => {
      expect(bytesEqual(h, want[j]!)).toBe(true);
    });
    verifyInclusion(index, leaves.length, hashLeaf(leaves[index]!), proofs[i]!, root);
  });
  return hashes;
}

describe("multiproofs", () => {
  it("expand to every leaf's RFC 6962 PATH and the tree's MTH (all subsets of trees up to 9)", () => {
    for (let size = 1; size <= 9; size++) {
      const leaves = leavesOf(size);
      for (let mask = 1; mask < 2 ** size; mask++) {
        const indices = leaves.map((_, i) => i).filter((i) => (mask >> i) % 2 === 1);
        check(leaves, indices);
      }
    }
  });

  it("expand correctly for random leaf sets of random trees up to 300", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }).chain((size) =>
          fc.tuple(
            fc.constant(size),
            fc.uniqueArray(fc.integer({ min: 0, max: size - 1 }), {
              minLength: 1,
              maxLength: 40,
            }),
          ),
        ),
        ([size, picked]) => {
          check(
            leavesOf(size),
            [...picked].sort((a, b) => a - b),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("send few hashes for a contiguous run: at most 2 per level", () => {
    // 100 consecutive leaves of a tree of a million need ~2,000 proof hashes one by one.
    for (const [start, size] of [
      [123_456, 1_000_000],
      [0, 1_000_000],
      [999_900, 1_000_000],
      [5, 2 ** 40 + 3],
    ] as const) {
      const indices = Array.from({ length: 100 }, (_, i) => start + i);
      const n = multiproofRanges(indices, size).length;
      expect(n).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)));
      expect(n).toBeGreaterThan(0);
    }
    // Every leaf of the tree: nothing to send.
    expect(multiproofRanges([0, 1, 2, 3, 4], 5)).toEqual([]);
    expect(multiproofRanges([], 5)).toEqual([]);
  });

  it("refuse a changed, missing or extra hash and bad indices", () => {
    const leaves = leavesOf(37);
    const indices = [3, 4, 20, 36];
    const hashes = check(leaves, indices);
    const leafHashes = indices.map((i) => hashLeaf(leaves[i]!));
    const root = mth(leaves);
    for (let j = 0; j < hashes.length; j++) {
      const changed = hashes.map((h) => h.slice());
      changed[j]![7]! ^= 1;
      const out = expandMultiproof(indices, leafHashes, 37, changed);
      expect(bytesEqual(out.root, root), `hash ${j} changed`).toBe(false);
    }
    const badLeaf = leafHashes.map((h) => h.slice());
    badLeaf[2]![0]! ^= 1;
    expect(bytesEqual(expandMultiproof(indices, badLeaf, 37, hashes).root, root)).toBe(false);
    expect(codeOf(() => expandMultiproof(indices, leafHashes, 37, hashes.slice(1)))).toBe(
      "PROOF_LENGTH",
    );
    expect(codeOf(() => expandMultiproof(indices, leafHashes, 37, [...hashes, hashes[0]!]))).toBe(
      "PROOF_LENGTH",
    );
    expect(codeOf(() => expandMultiproof(indices, leafHashes, 38, hashes))).not.toBe("no error");
    expect(codeOf(() => multiproofRanges([4, 3], 37))).toBe("MALFORMED");
    expect(codeOf(() => multiproofRanges([3, 3], 37))).toBe("MALFORMED");
    expect(codeOf(() => multiproofRanges([37], 37))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => multiproofRanges([1.5], 37))).toBe("MALFORMED");
    expect(codeOf(() => expandMultiproof([3], [new Uint8Array(31)], 37, hashes))).toBe("MALFORMED");
    expect(codeOf(() => expandMultiproof([], [], 37, []))).toBe("MALFORMED");
  });
});
