/**
 * @module
 * The log's Merkle tree over storage: the in-memory right edge (compact range and the strata it
 * is filling) plus cached reads of complete strata. Integration in Tessera's shape: the tree
 * reads nodes through a stratum reader it is given, and appending returns every stratum a batch
 * touched as data (StratumWrite), which the caller stores in the batch's one atomic write —
 * whatever the backend (src/storage/log-store.ts).
 *
 * Reads of any node of any published tree size are one stratum read (cached): complete nodes
 * never change, so the node a proof for an old tree size needs is the same node today.
 */
import { bytesEqual } from "../core/bytes.js";
import { CompactRange, foldRight } from "../core/compact.js";
import { check, VellumError } from "../core/errors.js";
import { LruCache } from "../core/lru.js";
import {
  checkSize,
  floorLog2,
  isPowerOfTwo,
  type NodeId,
  nodeEnd,
  nodeStart,
  rangeNodes,
} from "../core/merkle.js";
import { multiproofRanges } from "../core/multiproof.js";
import { consistencyProofPlan, type ProofPlan } from "../core/proof.js";
import { EMPTY_ROOT } from "../core/rfc6962.js";
import { partialTileWidth, TILE_HEIGHT, TILE_WIDTH } from "../core/tiles.js";
import type { StratumWrite } from "../storage/log-store.js";
import { nodeAddress, Stratum } from "./strata.js";

export interface TreeOptions {
  /** How many complete strata to keep decoded in memory (16 KiB each). */
  readonly cachedTiles?: number;
  /** Strata grow as nodes arrive instead of taking 16 KiB at once (many short trees). */
  readonly smallStrata?: boolean;
  /**
   * The caller keeps the leaves of the partial tile at level 0 itself (the index's lists keep
   * their values): append() leaves that stratum out of what it returns until it is full, and
   * load() is given its leaf hashes rather than reading it. A short tree appended to often then
   * stores nothing per append but its values.
   */
  readonly leafEdgeKept?: boolean;
}

/** Reads a stored stratum's bytes (undefined when missing). */
export type StratumReader = (level: number, index: number) => Promise<Uint8Array | undefined>;

export class Tree {
  readonly #read: StratumReader;
  #range: CompactRange;
  /** The right-edge stratum of each tile level that has one (partial, or full until replaced). */
  readonly #edge = new Map<number, Stratum>();
  /**
   * Complete strata kept decoded, and folds of right-edge subtrees by leaf range "start-end"
   * (see #prove): made on first use, as the index keeps thousands of short trees that never
   * need them.
   */
  #cache: LruCache<number, Stratum> | undefined;
  #folds: LruCache<string, Uint8Array> | undefined;
  readonly #cachedTiles: number;

  readonly #small: boolean;
  readonly #leafEdgeKept: boolean;

  private constructor(read: StratumReader, range: CompactRange, options: TreeOptions) {
    this.#read = read;
    this.#range = range;
    this.#cachedTiles = options.cachedTiles ?? 4096;
    this.#small = options.smallStrata === true;
    this.#leafEdgeKept = options.leafEdgeKept === true;
  }

  /** A tree of no leaves (nothing to read: the same as load() at size 0, without waiting). */
  static empty(read: StratumReader, options: TreeOptions = {}): Tree {
    return new Tree(read, CompactRange.empty(), options);
  }

  /**
   * Loads the tree of `size` whose compact range is `compact` (from the stored state), and the
   * partial strata on its right edge.
   */
  static async load(
    read: StratumReader,
    size: number,
    compact: readonly Uint8Array[],
    options: TreeOptions = {},
    /** With `leafEdgeKept`: the leaf hashes of the partial level-0 tile (size mod 256 of them). */
    leafEdge: readonly Uint8Array[] = [],
  ): Promise<Tree> {
    const tree = new Tree(read, CompactRange.fromHashes(0, size, compact), options);
    for (let level = 0; size >= TILE_WIDTH ** level; level++) {
      const width = partialTileWidth(size, level);
      if (width === 0) continue;
      const index = Math.floor(size / TILE_WIDTH ** (level + 1));
      if (level === 0 && tree.#leafEdgeKept) {
        check(
          leafEdge.length === width,
          "STATE_MISMATCH",
          `a tree of size ${size} needs ${width} leaves of its edge tile, not ${leafEdge.length}`,
        );
        tree.#edge.set(0, Stratum.fromRow0(0, index, leafEdge, tree.#small));
        continue;
      }
      const bytes = await read(level, index);
      if (bytes === undefined) {
        throw new VellumError(
          "STATE_MISMATCH",
          `stored tree of size ${size} is missing its edge tile ${level}/${index}`,
        );
      }
      const stratum = Stratum.decode(level, index, bytes, tree.#small);
      if (stratum.width !== width) {
        throw new VellumError(
          "STATE_MISMATCH",
          `edge tile ${level}/${index} has width ${stratum.width}, tree of size ${size} needs ${width}`,
        );
      }
      tree.#edge.set(level, stratum);
    }
    return tree;
  }

  get size(): number {
    return this.#range.end;
  }

  root(): Uint8Array {
    return this.#range.root();
  }

  compactHashes(): Uint8Array[] {
    return this.#range.hashes();
  }

  /**
   * Appends leaf hashes; returns every stratum they touched, to be stored with the batch. The
   * in-memory tree moves on at once: if that write fails, the caller must discard this Tree and
   * load a fresh one from storage.
   */
  append(leafHashes: readonly Uint8Array[]): StratumWrite[] {
    const touched = new Set<Stratum>();
    this.#range.appendAll(leafHashes, (level, index, hash) => {
      const at = nodeAddress(level, index);
      let stratum = this.#edge.get(at.tileLevel);
      if (stratum === undefined || stratum.index !== at.tileIndex) {
        if (stratum !== undefined && !stratum.full) {
          throw new VellumError(
            "INTERNAL",
            `tile ${at.tileLevel}/${stratum.index} replaced before it was full`,
          );
        }
        if (stratum !== undefined) this.#keep(at.tileLevel, stratum);
        stratum = Stratum.empty(at.tileLevel, at.tileIndex, this.#small);
        this.#edge.set(at.tileLevel, stratum);
      }
      stratum.push(at.row, at.position, hash);
      touched.add(stratum);
    });
    const writes: StratumWrite[] = [];
    for (const s of touched) {
      if (this.#leafEdgeKept && s.level === 0 && !s.full) continue;
      writes.push({ level: s.level, index: s.index, bytes: s.encode() });
    }
    return writes;
  }

  #keep(level: number, stratum: Stratum): void {
    this.#cache ??= new LruCache(this.#cachedTiles);
    this.#cache.set(cacheKey(level, stratum.index), stratum);
  }

  /** The stratum holding tile (level, index) if it is in memory (the edge or the cache). */
  #stratumInMemory(level: number, index: number): Stratum | undefined {
    const edge = this.#edge.get(level);
    if (edge !== undefined && edge.index === index) return edge;
    return this.#cache?.get(cacheKey(level, index));
  }

  /** The stratum holding tile (level, index), from memory or storage. */
  async #stratum(level: number, index: number): Promise<Stratum | undefined> {
    const inMemory = this.#stratumInMemory(level, index);
    if (inMemory !== undefined) return inMemory;
    const bytes = await this.#read(level, index);
    if (bytes === undefined) return undefined;
    const stratum = Stratum.decode(level, index, bytes, this.#small);
    if (stratum.full) this.#keep(level, stratum);
    return stratum;
  }

  /**
   * The stored level-0 hashes of leaves [start, end), all below the tree's size: what a read
   * checks each stored leaf against (src/log/integrity.ts). Row 0 of the level-0 strata, so
   * usually no storage read (the edge is in memory, full strata are cached); undefined where
   * a stratum is missing from storage.
   */
  async leafHashes(start: number, end: number): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = new Array(end - start);
    let i = start;
    while (i < end) {
      const tile = Math.floor(i / TILE_WIDTH);
      const stratum = this.#stratumInMemory(0, tile) ?? (await this.#stratum(0, tile));
      const first = tile * TILE_WIDTH;
      const stop = Math.min(end, first + TILE_WIDTH);
      for (; i < stop; i++) out[i - start] = stratum?.node(0, i - first);
    }
    return out;
  }

  /**
   * Hashes of complete nodes; every node must be complete in the current tree. Nodes whose
   * strata are in memory (the common case: the right edge and hot tiles) cost no await.
   */
  async readNodes(ids: readonly NodeId[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const { level, index } = ids[i]!;
      out[i] = this.#nodeInMemory(level, index) ?? (await this.#nodeFromStorage(level, index));
    }
    return out;
  }

  #nodeInMemory(level: number, index: number): Uint8Array | undefined {
    // nodeAddress() inlined: this runs ~20 times per proof.
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const row = level - tileLevel * TILE_HEIGHT;
    const perTile = TILE_WIDTH / 2 ** row;
    const tileIndex = Math.floor(index / perTile);
    return this.#stratumInMemory(tileLevel, tileIndex)?.node(row, index - tileIndex * perTile);
  }

  async #nodeFromStorage(level: number, index: number): Promise<Uint8Array> {
    const at = nodeAddress(level, index);
    const hash = (await this.#stratum(at.tileLevel, at.tileIndex))?.node(at.row, at.position);
    if (hash === undefined) {
      throw new VellumError("INTERNAL", `node ${level}/${index} is not in storage`);
    }
    return hash;
  }

  /**
   * The proof's hashes. An element of several nodes (an incomplete subtree on a tree's right
   * edge) is folded once per leaf range and cached: every proof against the same tree size needs
   * the same few folds, and they never change.
   */
  async #prove(plan: ProofPlan): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const element of plan.elements) {
      if (element.length === 1) {
        const { level, index } = element[0]!;
        out.push(this.#nodeInMemory(level, index) ?? (await this.#nodeFromStorage(level, index)));
        continue;
      }
      out.push(await this.#fold(nodeStart(element[0]!), nodeEnd(element[element.length - 1]!)));
    }
    return out;
  }

  /**
   * Inclusion proof of leaf `index` in the tree of `size` (any size up to the current one).
   * The same hashes as inclusionProofPlan (a test compares them for every index of many
   * sizes), found by walking the leaf's path upwards without building the plan: this is the
   * hottest read the server answers. At each level the path node's sibling is either a left
   * sibling (complete), a right sibling inside the tree (complete), one straddling the tree's
   * end (a fold of the nodes covering the rest, cached), or beyond the end (no hash: the path
   * node moves up unchanged).
   */
  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    this.#checkSize(size);
    checkSize(index, "leaf index");
    check(index < size, "OUT_OF_RANGE", `leaf index ${index} is not below tree size ${size}`);
    const out: Uint8Array[] = [];
    let path = index; // the path node's index at `level`
    let width = 1; // leaves under a node of `level`
    for (let level = 0; path !== 0 || width < size; level++) {
      const left = path % 2 === 1;
      const sibling = left ? path - 1 : path + 1;
      const start = sibling * width;
      if (left || start + width <= size) {
        out.push(
          this.#nodeInMemory(level, sibling) ?? (await this.#nodeFromStorage(level, sibling)),
        );
      } else if (start < size) {
        out.push(await this.#fold(start, size));
      }
      path = Math.floor(path / 2);
      width *= 2;
    }
    return out;
  }

  /** The hashes of the multiproof of leaves `indices` (strictly increasing) in the tree of `size`. */
  async multiproof(indices: readonly number[], size: number): Promise<Uint8Array[]> {
    this.#checkSize(size);
    const out: Uint8Array[] = [];
    for (const [start, end] of multiproofRanges(indices, size)) {
      const width = end - start;
      if (isPowerOfTwo(width)) {
        // A complete subtree (the walk's ranges start at a multiple of their width).
        const level = floorLog2(width);
        const index = start / width;
        out.push(this.#nodeInMemory(level, index) ?? (await this.#nodeFromStorage(level, index)));
      } else {
        out.push(await this.#fold(start, end));
      }
    }
    return out;
  }

  /** The hash of leaves [start, end) on a tree's right edge: a fold of complete nodes, cached. */
  async #fold(start: number, end: number): Promise<Uint8Array> {
    const key = `${start}-${end}`;
    let fold = this.#folds?.get(key);
    if (fold === undefined) {
      fold = foldRight(await this.readNodes(rangeNodes(start, end)))!;
      this.#folds ??= new LruCache(4096);
      this.#folds.set(key, fold);
    }
    return fold;
  }

  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    this.#checkSize(size2);
    return this.#prove(consistencyProofPlan(size1, size2));
  }

  /** Root of the tree of any size up to the current one. */
  async rootAt(size: number): Promise<Uint8Array> {
    this.#checkSize(size);
    if (size === this.size) return this.root();
    return foldRight(await this.readNodes(rangeNodes(0, size))) ?? EMPTY_ROOT;
  }

  /** The C2SP hash tile (level, index) of width `width`, if the tree holds that many hashes. */
  async hashTile(level: number, index: number, width: number): Promise<Uint8Array | undefined> {
    const stratum = await this.#stratum(level, index);
    return stratum?.hashTile(width);
  }

  /** Checks the stored nodes reproduce `root` at `size` (start-up guard). */
  async verifyRootAt(size: number, root: Uint8Array): Promise<boolean> {
    return bytesEqual(await this.rootAt(size), root);
  }

  #checkSize(size: number): void {
    checkSize(size);
    check(
      size <= this.size,
      "OUT_OF_RANGE",
      `tree size ${size} is beyond the log's size ${this.size}`,
    );
  }
}

/** A number naming tile (level, index): tile indices stay below 2^45, levels below 64. */
function cacheKey(level: number, index: number): number {
  return index * 64 + level;
}
