/**
 * Property tests of the Merkle core against a naive reference written straight from the RFC 6962
 * §2.1 definitions (recursive MTH, PATH and SUBPROOF over arrays), plus BigInt cross-checks of
 * the index arithmetic for sizes and indices up to 2^53-1.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import { CompactRange, foldRight } from "../../src/core/compact.js";
import { type NodeId, rangeNodes } from "../../src/core/merkle.js";
import {
  buildProof,
  consistencyProofPlan,
  inclusionProofPlan,
  planNodes,
} from "../../src/core/proof.js";
import { EMPTY_ROOT, hashChildren, hashLeaf } from "../../src/core/rfc6962.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { mth, path, subproof } from "../helpers/naive-merkle.js";

const leavesOf = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => Uint8Array.of(seed & 255, i & 255, (i >> 8) & 255));

/** A memory tree built with the code under test: every complete node, keyed "level/index". */
function buildTree(leaves: Uint8Array[]) {
  const nodes = new Map<string, Uint8Array>();
  const range = CompactRange.empty();
  range.appendAll(
    leaves.map((l) => hashLeaf(l)),
    (level, index, hash) => nodes.set(`${level}/${index}`, hash),
  );
  const read = (id: NodeId) => nodes.get(`${id.level}/${id.index}`)!;
  return { root: range.root(), read };
}

/** Roots of every prefix 0..n of the leaves, computed with the (separately checked) compact range. */
function prefixRoots(leaves: Uint8Array[]): Uint8Array[] {
  const range = CompactRange.empty();
  const roots = [range.root()];
  for (const l of leaves) {
    range.append(hashLeaf(l));
    roots.push(range.root());
  }
  return roots;
}

const flipBit = (bytes: Uint8Array, bit: number) => {
  const out = bytes.slice();
  out[Math.floor(bit / 8) % out.length]! ^= 1 << (bit % 8);
  return out;
};
const rejects = (f: () => void) => {
  try {
    f();
    return false;
  } catch (e) {
    return (e as { name?: string }).name === "VellumError";
  }
};

describe("against the naive RFC 6962 reference", () => {
  it("roots agree for every size 0..70", () => {
    const leaves = leavesOf(70, 1);
    const range = CompactRange.empty();
    expect(bytesEqual(range.root(), EMPTY_ROOT)).toBe(true);
    for (let n = 1; n <= 70; n++) {
      range.append(hashLeaf(leaves[n - 1]!));
      expect(bytesEqual(range.root(), mth(leaves.slice(0, n)))).toBe(true);
    }
  });

  it("inclusion proofs equal PATH and verify; any one-bit change is rejected", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (size, rawIndex, seed, bit) => {
          const index = rawIndex % size;
          const leaves = leavesOf(size, seed);
          const tree = buildTree(leaves);
          const proof = buildProof(inclusionProofPlan(index, size), tree.read);
          const want = path(index, leaves);
          expect(proof.length).toBe(want.length);
          expect(proof).toEqual(want);
          const leafHash = hashLeaf(leaves[index]!);
          verifyInclusion(index, size, leafHash, proof, tree.root);

          expect(
            rejects(() => verifyInclusion(index, size, leafHash, proof, flipBit(tree.root, bit))),
          ).toBe(true);
          expect(
            rejects(() => verifyInclusion(index, size, flipBit(leafHash, bit), proof, tree.root)),
          ).toBe(true);
          if (proof.length > 0) {
            const j = bit % proof.length;
            const bad = proof.map((h, i) => (i === j ? flipBit(h, bit) : h));
            expect(rejects(() => verifyInclusion(index, size, leafHash, bad, tree.root))).toBe(
              true,
            );
          }
          // A changed index or size is checked against what a verifier would hold for it: the
          // true root of the tree of that size (the proof alone does not commit to the size).
          const roots = prefixRoots(leavesOf(size + 256, seed));
          for (let b = 0; b < 9; b++) {
            const otherIndex = index ^ (1 << b);
            expect(
              rejects(() => verifyInclusion(otherIndex, size, leafHash, proof, tree.root)),
            ).toBe(true);
            const otherSize = size ^ (1 << b);
            expect(
              rejects(() => verifyInclusion(index, otherSize, leafHash, proof, roots[otherSize]!)),
            ).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("consistency proofs equal SUBPROOF and verify; any one-bit change is rejected", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (size2, raw1, seed, bit) => {
          const size1 = 1 + (raw1 % size2);
          const leaves = leavesOf(size2, seed);
          const tree = buildTree(leaves);
          const root1 = mth(leaves.slice(0, size1));
          const proof = buildProof(consistencyProofPlan(size1, size2), tree.read);
          const want = size1 === size2 ? [] : subproof(size1, leaves, true);
          expect(proof.length).toBe(want.length);
          expect(proof).toEqual(want);
          verifyConsistency(size1, size2, proof, root1, tree.root);

          const v = (s1: number, s2: number, p: Uint8Array[], r1: Uint8Array, r2: Uint8Array) =>
            rejects(() => verifyConsistency(s1, s2, p, r1, r2));
          expect(v(size1, size2, proof, flipBit(root1, bit), tree.root)).toBe(true);
          expect(v(size1, size2, proof, root1, flipBit(tree.root, bit))).toBe(true);
          if (proof.length > 0) {
            const j = bit % proof.length;
            const bad = proof.map((h, i) => (i === j ? flipBit(h, bit) : h));
            expect(v(size1, size2, bad, root1, tree.root)).toBe(true);
          }
          // Changed sizes are checked against the true roots of those sizes. Size 0 is left out:
          // every tree is consistent with the empty tree, so that claim is true, not forged.
          const roots = prefixRoots(leavesOf(size2 + 256, seed));
          for (let b = 0; b < 9; b++) {
            const s1 = size1 ^ (1 << b);
            if (s1 !== 0) expect(v(s1, size2, proof, roots[s1]!, tree.root)).toBe(true);
            const s2 = size2 ^ (1 << b);
            expect(v(size1, s2, proof, root1, roots[s2]!)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---- arithmetic past 2^32: a BigInt transcription of PATH/SUBPROOF node ids ----
type BigId = { level: bigint; index: bigint };
const bigK = (n: bigint) => {
  let p = 1n;
  while (p * 2n < n) p *= 2n;
  return p;
};
function bigRange(begin: bigint, end: bigint): BigId[] {
  const out: BigId[] = [];
  while (begin < end) {
    let level = 0n;
    while (begin % (1n << (level + 1n)) === 0n && begin + (1n << (level + 1n)) <= end) level++;
    if (begin === 0n) while (1n << (level + 1n) <= end) level++;
    out.push({ level, index: begin >> level });
    begin += 1n << level;
  }
  return out;
}
function bigPath(m: bigint, start: bigint, n: bigint): BigId[][] {
  if (n <= 1n) return [];
  const s = bigK(n);
  return m < s
    ? [...bigPath(m, start, s), bigRange(start + s, start + n)]
    : [...bigPath(m - s, start + s, n - s), bigRange(start, start + s)];
}
function bigSubproof(m: bigint, start: bigint, n: bigint, b: boolean): BigId[][] {
  if (m === n) return b ? [] : [bigRange(start, start + n)];
  const s = bigK(n);
  return m <= s
    ? [...bigSubproof(m, start, s, b), bigRange(start + s, start + n)]
    : [...bigSubproof(m - s, start + s, n - s, false), bigRange(start, start + s)];
}
const asNumbers = (ids: BigId[][]) =>
  ids.map((e) => e.map((id) => ({ level: Number(id.level), index: Number(id.index) })));

const bigSize = fc.oneof(
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: 2 ** 32 - 3, max: 2 ** 32 + 3 }),
  fc.integer({ min: Number.MAX_SAFE_INTEGER - 1000, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: 0, max: 52 }).map((e) => 2 ** e),
);

describe("index arithmetic up to 2^53-1", () => {
  it("inclusion and consistency plans match a BigInt transcription of the RFC", () => {
    fc.assert(
      fc.property(bigSize, fc.double({ min: 0, max: 1, noNaN: true }), (size, f) => {
        const index = Math.min(size - 1, Math.floor(f * size));
        expect(inclusionProofPlan(index, size).elements).toEqual(
          asNumbers(bigPath(BigInt(index), 0n, BigInt(size))),
        );
        const size1 = Math.max(1, index);
        expect(consistencyProofPlan(size1, size).elements).toEqual(
          size1 === size ? [] : asNumbers(bigSubproof(BigInt(size1), 0n, BigInt(size), true)),
        );
        expect(rangeNodes(0, size)).toEqual(asNumbers([bigRange(0n, BigInt(size))])[0]);
      }),
      { numRuns: 500 },
    );
  });

  it("proofs in huge trees verify end to end (a tree of identical leaves has O(1) node hashes)", () => {
    // In a tree whose leaves are all equal, every perfect subtree of height h has the same hash
    // P[h], so proofs can be built and checked for sizes near 2^53 with real hashes.
    const P = [hashLeaf(Uint8Array.of(7))];
    for (let h = 1; h <= 53; h++) P.push(hashChildren(P[h - 1]!, P[h - 1]!));
    const read = (id: NodeId) => P[id.level]!;
    const rootOf = (n: number) => foldRight(rangeNodes(0, n).map(read)) ?? EMPTY_ROOT;
    fc.assert(
      fc.property(bigSize, bigSize, (a, b) => {
        const [size1, size2] = a <= b ? [a, b] : [b, a];
        const index = size2 - 1 - (size1 % size2);
        const proof = buildProof(inclusionProofPlan(index, size2), read);
        verifyInclusion(index, size2, P[0]!, proof, rootOf(size2));
        const cproof = buildProof(consistencyProofPlan(size1, size2), read);
        verifyConsistency(size1, size2, cproof, rootOf(size1), rootOf(size2));
        if (size1 !== size2)
          expect(
            rejects(() => verifyConsistency(size1, size2, cproof, rootOf(size2), rootOf(size2))),
          ).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("compact ranges past 2^32 merge like the binary counter they are", () => {
    const start = 2 ** 32 - 2;
    const P = [hashLeaf(Uint8Array.of(7))];
    for (let h = 1; h <= 53; h++) P.push(hashChildren(P[h - 1]!, P[h - 1]!));
    const range = CompactRange.fromHashes(
      0,
      start,
      rangeNodes(0, start).map((id) => P[id.level]!),
    );
    const visited: string[] = [];
    range.appendAll([P[0]!, P[0]!, P[0]!], (l, i) => visited.push(`${l}/${i}`));
    expect(visited).toEqual([
      "0/4294967294",
      "0/4294967295",
      "1/2147483647",
      ...Array.from({ length: 31 }, (_, j) => `${j + 2}/${2 ** (30 - j) - 1}`),
      "0/4294967296",
    ]);
    expect(bytesEqual(range.root(), hashChildren(P[32]!, P[0]!))).toBe(true);
    expect(planNodes(inclusionProofPlan(2 ** 32, 2 ** 32 + 1))).toEqual([{ level: 32, index: 0 }]);
  });
});
