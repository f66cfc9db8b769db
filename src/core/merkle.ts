/**
 * @module
 * Node addressing for RFC 6962 Merkle trees, with safe-integer arithmetic.
 *
 * A node is named by (level, index): the root of the perfect subtree over leaves
 * [index·2^level, (index+1)·2^level). Leaves are level 0. Tree sizes and indices go up to
 * 2^53-1 (Number.MAX_SAFE_INTEGER), so nothing here uses JavaScript's 32-bit bitwise operators
 * on them: powers of two are multiplications, shifts are divisions, bits come from `%`.
 */
import { check } from "./errors.js";

export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** Largest tree size (and one past the largest leaf index) Vellum represents: 2^53-1. */
export const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;

const TWO_32 = 2 ** 32;

export function checkSize(size: number, what = "tree size"): void {
  check(
    Number.isSafeInteger(size) && size >= 0,
    "OUT_OF_RANGE",
    `${what} must be an integer in [0, 2^53-1], got ${size}`,
  );
}

/** floor(log2(n)) for 1 <= n <= 2^53-1. */
export function floorLog2(n: number): number {
  if (n < TWO_32) return 31 - Math.clz32(n);
  return 63 - Math.clz32(Math.floor(n / TWO_32));
}

/** Number of trailing zero bits of n >= 1. */
export function trailingZeros(n: number): number {
  let count = 0;
  while (n % 2 === 0) {
    n /= 2;
    count++;
  }
  return count;
}

/** The RFC 6962 split point k for n >= 2 leaves: the largest power of two smaller than n. */
export function splitPoint(n: number): number {
  return 2 ** floorLog2(n - 1);
}

/** Whether n >= 1 is a power of two. */
export function isPowerOfTwo(n: number): boolean {
  return n >= 1 && 2 ** floorLog2(n) === n;
}

/** The first leaf index covered by a node. */
export function nodeStart(node: NodeId): number {
  return node.index * 2 ** node.level;
}

/** One past the last leaf index covered by a node. */
export function nodeEnd(node: NodeId): number {
  return (node.index + 1) * 2 ** node.level;
}

/**
 * The perfect subtrees that exactly cover leaves [begin, end), left to right: the nodes a compact
 * range of that span holds. For begin = 0 they follow the one bits of `end`, largest first.
 */
export function rangeNodes(begin: number, end: number): NodeId[] {
  checkSize(begin, "range begin");
  checkSize(end, "range end");
  check(begin <= end, "OUT_OF_RANGE", `range begin ${begin} is after range end ${end}`);
  const nodes: NodeId[] = [];
  // Greedy from the left: the largest subtree that is aligned at `pos` and fits before `end`.
  let pos = begin;
  while (pos < end) {
    const fits = floorLog2(end - pos);
    const level = pos === 0 ? fits : Math.min(trailingZeros(pos), fits);
    nodes.push({ level, index: pos / 2 ** level });
    pos += 2 ** level;
  }
  return nodes;
}
