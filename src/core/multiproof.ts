/**
 * @module
 * Multiproofs: the inclusion of many leaves in one tree, each shared hash sent once.
 *
 * The inclusion proofs of leaves that sit close together repeat each other: 100 consecutive
 * entries of a million-leaf tree need 2,000 proof hashes, and a client that holds the 100 leaf
 * hashes can compute all but the 20 to 40 that cover the rest of the tree. A multiproof sends
 * only what the client cannot compute: walk the tree of `size` from the root, splitting ranges
 * as RFC 6962's MTH does (at the largest power of two below the range's size); a range holding
 * none of the proven leaves is sent as one hash; a range holding all of them is computed by
 * the client; any other range is split. The hashes are sent in the order of that walk (left to
 * right), so the format has no positions in it: both sides derive them from (indices, size).
 *
 * From a multiproof and the leaf hashes, expandMultiproof recomputes the root (to compare with a
 * signed checkpoint) and each leaf's ordinary RFC 9162 inclusion proof, so every leaf still gets
 * its own receipt (a C2SP tlog-proof), byte for byte the one the log would have sent.
 *
 * Pure index arithmetic and hashing: no I/O, as the rest of the core.
 */
import { check, VellumError } from "./errors.js";
import { checkSize, splitPoint } from "./merkle.js";
import { HASH_SIZE, hashChildren } from "./rfc6962.js";

/** A leaf range [start, end) of the tree: a complete subtree, or one on the right edge. */
export type LeafRange = readonly [start: number, end: number];

/** Indices must be strictly increasing, below `size`: each is a leaf being proven. */
function checkIndices(indices: readonly number[], size: number): void {
  checkSize(size);
  let previous = -1;
  for (const index of indices) {
    check(
      Number.isSafeInteger(index) && index > previous,
      "MALFORMED",
      "multiproof leaf indices must be integers in strictly increasing order",
    );
    previous = index;
  }
  check(
    indices.length === 0 || previous < size,
    "OUT_OF_RANGE",
    `leaf index ${previous} is not below tree size ${size}`,
  );
}

/** First position in indices[lo, hi) holding a value >= value. */
function lowerBound(indices: readonly number[], value: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (indices[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The ranges whose hashes make up the multiproof of `indices` (strictly increasing) in the tree
 * of `size`, in the order they are sent. Proving no leaf needs nothing; so does the tree of 0.
 */
export function multiproofRanges(indices: readonly number[], size: number): LeafRange[] {
  checkIndices(indices, size);
  const out: LeafRange[] = [];
  if (indices.length === 0) return out;
  const visit = (start: number, end: number, lo: number, hi: number): void => {
    if (lo === hi) {
      out.push([start, end]);
      return;
    }
    if (hi - lo === end - start) return; // every leaf of the range is proven: computable
    const split = start + splitPoint(end - start);
    const mid = lowerBound(indices, split, lo, hi);
    visit(start, split, lo, mid);
    visit(split, end, mid, hi);
  };
  visit(0, size, 0, indices.length);
  return out;
}

export interface ExpandedMultiproof {
  /** The root of the tree of `size` the multiproof and leaves compute. */
  readonly root: Uint8Array;
  /** The RFC 9162 inclusion proof of each proven leaf, in the order of `indices`. */
  readonly proofs: Uint8Array[][];
}

/**
 * Recomputes the root and every leaf's inclusion proof from a multiproof. `leafHashes[i]` is the
 * hash of leaf `indices[i]`. Throws PROOF_LENGTH when the multiproof has too few or too many
 * hashes, MALFORMED for a hash that is not 32 bytes. The caller compares `root` with the
 * checkpoint's root: a multiproof proves nothing until that matches.
 */
export function expandMultiproof(
  indices: readonly number[],
  leafHashes: readonly Uint8Array[],
  size: number,
  hashes: readonly Uint8Array[],
): ExpandedMultiproof {
  checkIndices(indices, size);
  check(
    leafHashes.length === indices.length,
    "MALFORMED",
    `${indices.length} leaf indices but ${leafHashes.length} leaf hashes`,
  );
  check(indices.length > 0, "MALFORMED", "a multiproof proves at least one leaf");
  for (const h of [...leafHashes, ...hashes]) {
    check(h.length === HASH_SIZE, "MALFORMED", "multiproof and leaf hashes must be 32 bytes");
  }
  const proofs: Uint8Array[][] = indices.map(() => []);
  let next = 0;
  const walk = (start: number, end: number, lo: number, hi: number): Uint8Array => {
    if (lo === hi) {
      if (next === hashes.length) {
        throw new VellumError(
          "PROOF_LENGTH",
          `the multiproof has ${hashes.length} hashes; proving ${indices.length} leaves in a tree of ${size} needs more`,
        );
      }
      return hashes[next++]!;
    }
    if (end - start === 1) return leafHashes[lo]!;
    const split = start + splitPoint(end - start);
    const mid = lowerBound(indices, split, lo, hi);
    const left = walk(start, split, lo, mid);
    const right = walk(split, end, mid, hi);
    // The walk returns bottom-up, so each proof grows from the leaf towards the root.
    for (let i = lo; i < mid; i++) proofs[i]!.push(right);
    for (let i = mid; i < hi; i++) proofs[i]!.push(left);
    return hashChildren(left, right);
  };
  const root = walk(0, size, 0, indices.length);
  if (next !== hashes.length) {
    throw new VellumError(
      "PROOF_LENGTH",
      `the multiproof has ${hashes.length} hashes; proving ${indices.length} leaves in a tree of ${size} needs ${next}`,
    );
  }
  return { root, proofs };
}
