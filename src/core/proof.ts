/**
 * @module
 * Which nodes a proof needs, and assembling the proof once they are read (RFC 6962 §2.1.1-2.1.2,
 * RFC 9162 §2.1.3-2.1.4). Planning is index arithmetic only: it never fetches anything, so the
 * same plan serves a memory tree, LevelDB tiles or tiles downloaded over HTTP.
 *
 * Each proof hash is the root of a span of leaves. When that span is a perfect subtree it is one
 * stored node; on the right edge of a tree that is not a power of two in size it is an
 * incomplete ("ephemeral") subtree, computed by folding the perfect subtrees that cover it. So a
 * plan lists, for each proof hash in order (bottom-up), the nodes to fold.
 */

import { foldRight } from "./compact.js";
import { check } from "./errors.js";
import { checkSize, type NodeId, rangeNodes, splitPoint } from "./merkle.js";
import { HASH_SIZE } from "./rfc6962.js";

export interface ProofPlan {
  /** For each proof hash, bottom-up: the perfect subtrees (left to right) whose fold it is. */
  readonly elements: readonly (readonly NodeId[])[];
}

/** The hashes an inclusion proof of leaf `index` in a tree of `size` is made of. */
export function inclusionProofPlan(index: number, size: number): ProofPlan {
  checkSize(size);
  checkSize(index, "leaf index");
  check(index < size, "OUT_OF_RANGE", `leaf index ${index} is not below tree size ${size}`);
  const elements: NodeId[][] = [];
  // RFC 6962 PATH(m, D[start, start+n)), unrolled from the top; siblings are collected top-down
  // and reversed at the end so the proof runs from the leaf up.
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      elements.push(rangeNodes(start + k, start + n));
      n = k;
    } else {
      elements.push(rangeNodes(start, start + k));
      start += k;
      m -= k;
      n -= k;
    }
  }
  return { elements: elements.reverse() };
}

/** The hashes a consistency proof from tree size `size1` to `size2` is made of. */
export function consistencyProofPlan(size1: number, size2: number): ProofPlan {
  checkSize(size1, "first tree size");
  checkSize(size2, "second tree size");
  check(size1 <= size2, "OUT_OF_RANGE", `first tree size ${size1} exceeds second ${size2}`);
  // Empty from size 0 (nothing to prove) and between equal sizes (RFC 9162 §2.1.4.1).
  if (size1 === 0 || size1 === size2) return { elements: [] };
  const elements: NodeId[][] = [];
  // RFC 6962 SUBPROOF(m, D[start, start+n), b), unrolled; `whole` is b.
  let start = 0;
  let n = size2;
  let m = size1;
  let whole = true;
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      elements.push(rangeNodes(start + k, start + n));
      n = k;
    } else {
      elements.push(rangeNodes(start, start + k));
      start += k;
      m -= k;
      n -= k;
      whole = false;
    }
  }
  // m = n: the old tree's subtree D[start, start+m) itself, unless it is the whole old tree,
  // which the verifier already knows as its first root.
  if (!whole) elements.push(rangeNodes(start, start + m));
  return { elements: elements.reverse() };
}

/** Every node a plan reads, in plan order (duplicates are not possible within one proof). */
export function planNodes(plan: ProofPlan): NodeId[] {
  return plan.elements.flat();
}

/**
 * Builds the proof from the hashes of `planNodes(plan)`, given in the same order: each element
 * is its single node's hash, or the fold of its nodes' hashes.
 */
export function assembleProof(plan: ProofPlan, hashes: readonly Uint8Array[]): Uint8Array[] {
  const needed = plan.elements.reduce((sum, e) => sum + e.length, 0);
  check(
    hashes.length === needed,
    "INTERNAL",
    `proof plan needs ${needed} node hashes, got ${hashes.length}`,
  );
  const proof: Uint8Array[] = [];
  let i = 0;
  for (const element of plan.elements) {
    const part = hashes.slice(i, i + element.length);
    for (const h of part) check(h.length === HASH_SIZE, "INTERNAL", "node hash must be 32 bytes");
    proof.push(foldRight(part)!);
    i += element.length;
  }
  return proof;
}

/** Builds a proof by reading each node the plan needs from `readNode` (synchronous). */
export function buildProof(plan: ProofPlan, readNode: (node: NodeId) => Uint8Array): Uint8Array[] {
  return assembleProof(plan, planNodes(plan).map(readNode));
}
