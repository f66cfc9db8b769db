/**
 * @module
 * Compact ranges: the O(log n) state needed to extend a Merkle tree and compute its root.
 *
 * A compact range over leaves [begin, end) holds the hashes of the perfect subtrees that cover
 * it exactly (see `rangeNodes`), left to right. Appending a leaf merges equal-sized neighbours,
 * and every node that becomes complete on the way is reported to a visitor: that is how the
 * sequencer learns which interior hashes (and so which tile entries) a batch creates, without
 * ever re-reading the tree. With begin = 0 the range yields the RFC 6962 root of size `end`.
 */
import { check, VellumError } from "./errors.js";
import { checkSize, type NodeId, rangeNodes } from "./merkle.js";
import { EMPTY_ROOT, HASH_SIZE, hashChildren } from "./rfc6962.js";

/** Called for each node that becomes complete: the appended leaf first, then its new parents. */
export type NodeVisitor = (level: number, index: number, hash: Uint8Array) => void;

export class CompactRange {
  readonly begin: number;
  #end: number;
  // Parallel arrays: the levels and hashes of the covering subtrees, left to right.
  readonly #levels: number[];
  readonly #hashes: Uint8Array[];

  private constructor(begin: number, end: number, levels: number[], hashes: Uint8Array[]) {
    this.begin = begin;
    this.#end = end;
    this.#levels = levels;
    this.#hashes = hashes;
  }

  /** An empty range starting at leaf `begin` (0 for a whole tree). */
  static empty(begin = 0): CompactRange {
    checkSize(begin, "range begin");
    return new CompactRange(begin, begin, [], []);
  }

  /**
   * Restores a range from the hashes of `rangeNodes(begin, end)`, in that order (e.g. read from
   * storage or from tiles). The hashes are trusted: this cannot check them.
   */
  static fromHashes(begin: number, end: number, hashes: readonly Uint8Array[]): CompactRange {
    const nodes = rangeNodes(begin, end);
    check(
      nodes.length === hashes.length,
      "MALFORMED",
      `compact range [${begin}, ${end}) needs ${nodes.length} hashes, got ${hashes.length}`,
    );
    for (const h of hashes) check(h.length === HASH_SIZE, "MALFORMED", "hash must be 32 bytes");
    return new CompactRange(
      begin,
      end,
      nodes.map((n) => n.level),
      hashes.slice(),
    );
  }

  get end(): number {
    return this.#end;
  }

  /** The covering subtrees' ids, left to right (equal to `rangeNodes(begin, end)`). */
  nodes(): NodeId[] {
    let pos = this.begin;
    return this.#levels.map((level) => {
      const id = { level, index: pos / 2 ** level };
      pos += 2 ** level;
      return id;
    });
  }

  /** The covering subtrees' hashes, left to right. */
  hashes(): Uint8Array[] {
    return this.#hashes.slice();
  }

  /** Appends one leaf hash; reports every node that becomes complete to `visit`. */
  append(leafHash: Uint8Array, visit?: NodeVisitor): void {
    // Plain ifs rather than check(): this runs for every leaf the log appends.
    if (leafHash.length !== HASH_SIZE) {
      throw new VellumError("MALFORMED", "leaf hash must be 32 bytes");
    }
    if (this.#end >= Number.MAX_SAFE_INTEGER) {
      throw new VellumError("OUT_OF_RANGE", "tree is full (2^53-1 leaves)");
    }
    let level = 0;
    let index = this.#end;
    let hash = leafHash;
    visit?.(level, index, hash);
    // A right child (odd index) merges with its left sibling when that sibling lies inside the
    // range; in a compact range that sibling is necessarily the last subtree held.
    while (index % 2 === 1 && (index - 1) * 2 ** level >= this.begin) {
      const last = this.#levels.length - 1;
      if (this.#levels[last] !== level) {
        throw new VellumError("INTERNAL", "compact range is not canonical");
      }
      hash = hashChildren(this.#hashes[last]!, hash);
      this.#levels.pop();
      this.#hashes.pop();
      level++;
      index = (index - 1) / 2;
      visit?.(level, index, hash);
    }
    this.#levels.push(level);
    this.#hashes.push(hash);
    this.#end++;
  }

  /** Appends leaf hashes in order. */
  appendAll(leafHashes: Iterable<Uint8Array>, visit?: NodeVisitor): void {
    for (const h of leafHashes) this.append(h, visit);
  }

  /**
   * The RFC 6962 root of the tree of size `end`: the covering subtrees folded right to left.
   * Only meaningful for ranges that start at leaf 0.
   */
  root(): Uint8Array {
    check(this.begin === 0, "OUT_OF_RANGE", "only a range starting at leaf 0 has a tree root");
    return foldRight(this.#hashes) ?? EMPTY_ROOT;
  }

  clone(): CompactRange {
    return new CompactRange(this.begin, this.#end, this.#levels.slice(), this.#hashes.slice());
  }
}

/**
 * Hashes a left-to-right list of adjacent perfect subtrees into the root of their union, folding
 * from the right as RFC 6962's split rule implies. Returns undefined for an empty list.
 */
export function foldRight(hashes: readonly Uint8Array[]): Uint8Array | undefined {
  let acc = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) acc = hashChildren(hashes[i]!, acc!);
  return acc;
}

/** The RFC 6962 root of the given leaf hashes (a convenience over CompactRange). */
export function rootOf(leafHashes: Iterable<Uint8Array>): Uint8Array {
  const range = CompactRange.empty();
  range.appendAll(leafHashes);
  return range.root();
}
