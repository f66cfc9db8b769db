/**
 * @module
 * Verifying inclusion and consistency proofs (RFC 9162 §2.1.3.2 and §2.1.4.2): recompute the
 * root(s) from the proof, then compare. Every failure is a VellumError saying what mismatched:
 * OUT_OF_RANGE (impossible index/sizes), PROOF_LENGTH (wrong number of hashes for the claim),
 * MALFORMED (a hash that is not 32 bytes), PROOF_MISMATCH (a recomputed root differs).
 *
 * The arithmetic halves numbers with Math.floor instead of `>>` so sizes past 2^32 work.
 */
import { base64Encode, bytesEqual } from "./bytes.js";
import { check, VellumError } from "./errors.js";
import { checkSize, isPowerOfTwo } from "./merkle.js";
import { consistencyProofPlan, inclusionProofPlan } from "./proof.js";
import { HASH_SIZE, hashChildren } from "./rfc6962.js";

function checkHashes(proof: readonly Uint8Array[], what: string): void {
  for (const [i, h] of proof.entries()) {
    check(h.length === HASH_SIZE, "MALFORMED", `${what} hash ${i} is ${h.length} bytes, not 32`);
  }
}

function checkRoot(root: Uint8Array, what: string): void {
  check(root.length === HASH_SIZE, "MALFORMED", `${what} is ${root.length} bytes, not 32`);
}

function mismatch(what: string, computed: Uint8Array, expected: Uint8Array): VellumError {
  return new VellumError(
    "PROOF_MISMATCH",
    `${what}: proof computes ${base64Encode(computed)}, expected ${base64Encode(expected)}`,
  );
}

/**
 * The root that an inclusion proof for `leafHash` at `index` implies for a tree of `size`.
 * Throws if the proof cannot be one for that (index, size).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkSize(size);
  checkSize(index, "leaf index");
  check(index < size, "OUT_OF_RANGE", `leaf index ${index} is not below tree size ${size}`);
  check(leafHash.length === HASH_SIZE, "MALFORMED", "leaf hash must be 32 bytes");
  const want = inclusionProofPlan(index, size).elements.length;
  check(
    proof.length === want,
    "PROOF_LENGTH",
    `inclusion proof for index ${index} in a tree of size ${size} has ${want} hashes, got ${proof.length}`,
  );
  checkHashes(proof, "inclusion proof");

  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      // Skip the levels where this node has no right sibling (the tree's ragged right edge).
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // The length check above guarantees the path reached the root.
  check(sn === 0, "INTERNAL", "inclusion proof did not reach the root");
  return r;
}

/** Throws unless `proof` shows `leafHash` at `index` in the tree of `size` with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkRoot(root, "root");
  const computed = rootFromInclusionProof(index, size, leafHash, proof);
  if (!bytesEqual(computed, root)) {
    throw mismatch(`inclusion of leaf ${index} in tree of size ${size}`, computed, root);
  }
}

/**
 * The two roots a consistency proof implies (RFC 9162 §2.1.4.2, steps 2-6): `old`, the root of
 * the first `size1` leaves, and `new`, the root of all `size2` leaves, for 0 < size1 < size2.
 * When size1 is a power of two the old tree is one node of the new tree, absent from the proof,
 * so `root1` is taken as it and `old` is `root1` itself; otherwise both roots are computed from
 * the proof alone. Throws if the proof cannot be one for (size1, size2).
 *
 * Why both: if `new` equals a root the log signed, the proof's hashes are that tree's own nodes
 * (short of a SHA-256 collision), so an `old` that differs from a root the log signed for size1
 * proves the log signed two trees that do not extend each other.
 */
export function rootsFromConsistencyProof(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
): { readonly old: Uint8Array; readonly new: Uint8Array } {
  checkSize(size1, "first tree size");
  checkSize(size2, "second tree size");
  check(
    size1 > 0 && size1 < size2,
    "OUT_OF_RANGE",
    `roots from a consistency proof need 0 < first size < second size, got ${size1} and ${size2}`,
  );
  checkRoot(root1, "first root");
  const want = consistencyProofPlan(size1, size2).elements.length;
  check(
    proof.length === want,
    "PROOF_LENGTH",
    `consistency proof from size ${size1} to ${size2} has ${want} hashes, got ${proof.length}`,
  );
  checkHashes(proof, "consistency proof");

  // When the old tree is a perfect subtree, its root is the proof's implicit first hash.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    check(sn !== 0, "INTERNAL", "consistency proof longer than the path");
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  check(sn === 0, "INTERNAL", "consistency proof did not reach the root");
  return { old: fr, new: sr };
}

/**
 * Throws unless `proof` shows that the tree of `size2` with `root2` extends the tree of `size1`
 * with `root1`. From size 0 the proof must be empty (every tree extends the empty one); between
 * equal sizes it must be empty and the roots equal.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkSize(size1, "first tree size");
  checkSize(size2, "second tree size");
  check(size1 <= size2, "OUT_OF_RANGE", `first tree size ${size1} exceeds second ${size2}`);
  checkRoot(root1, "first root");
  checkRoot(root2, "second root");
  const want = consistencyProofPlan(size1, size2).elements.length;
  check(
    proof.length === want,
    "PROOF_LENGTH",
    `consistency proof from size ${size1} to ${size2} has ${want} hashes, got ${proof.length}`,
  );
  checkHashes(proof, "consistency proof");
  if (size1 === size2) {
    if (!bytesEqual(root1, root2)) throw mismatch(`trees of equal size ${size1}`, root2, root1);
    return;
  }
  if (size1 === 0) return;
  const roots = rootsFromConsistencyProof(size1, size2, proof, root1);
  if (!bytesEqual(roots.old, root1)) throw mismatch(`old tree of size ${size1}`, roots.old, root1);
  if (!bytesEqual(roots.new, root2)) throw mismatch(`new tree of size ${size2}`, roots.new, root2);
}
