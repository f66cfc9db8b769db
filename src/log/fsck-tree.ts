/**
 * @module
 * What `vellum fsck` (fsck.ts) walks: the stored strata of each tile level, read in order as the
 * walk reaches them, and the tree re-derived from the leaves — a compact range whose nodes are
 * compared with the stored ones as they complete. Each fault is reported once, where it is (see
 * fsck.ts): a leaf that disagrees with its tile's level-0 hash stays disputed until its parent
 * node tells which of the two is damaged.
 */
import { bytesEqual, getUint64, hexEncode } from "../core/bytes.js";
import { foldRight } from "../core/compact.js";
import { EMPTY_ROOT, HASH_SIZE, hashChildren } from "../core/rfc6962.js";
import { keyAfter } from "../storage/kv-log-layout.js";
import type { KeyValueStore } from "../storage/types.js";
import { nodeAddress, Stratum } from "./strata.js";

/** What fsck reports (fsck.ts re-exports it). */
export type FsckProblemKind = "state" | "entry" | "tile" | "checkpoint" | "index";

export interface FsckProblem {
  readonly kind: FsckProblemKind;
  readonly message: string;
  /** The entry index it concerns, if one. */
  readonly index?: number;
}

export type Report = (problem: FsckProblem) => void;

export const TAG = { entry: 0x65, tile: 0x74, id: 0x69, leaf: 0x68, payload: 0x70, idem: 0x6b };
export const short = (hash: Uint8Array | undefined) =>
  hash === undefined ? "none" : `${hexEncode(hash).slice(0, 16)}…`;
const tileName = (level: number, index: number) => {
  const at = nodeAddress(level, index);
  return `tile ${at.tileLevel}/${at.tileIndex}`;
};

/** Every [key, value] with gte <= key < lt, in order, read `chunk` at a time. */
export async function* scan(
  kv: KeyValueStore,
  gte: Uint8Array,
  lt: Uint8Array,
  chunk: number,
): AsyncGenerator<[Uint8Array, Uint8Array]> {
  let from = gte;
  for (;;) {
    const rows = await kv.range({ gte: from, lt, limit: chunk });
    yield* rows;
    if (rows.length < chunk) return;
    from = keyAfter(rows[rows.length - 1]![0]);
  }
}

/** The stored strata of each tile level, read in index order as the re-derived tree reaches them. */
export class StoredStrata {
  readonly #kv: KeyValueStore;
  readonly #report: (problem: FsckProblem) => void;
  readonly #cursors = new Map<number, AsyncGenerator<[Uint8Array, Uint8Array]>>();
  /** The next stored stratum of each level not yet reached (read ahead by one). */
  readonly #ahead = new Map<number, { index: number; bytes: Uint8Array } | undefined>();
  /** The stratum of each level the walk is in (undefined: missing or damaged, reported). */
  readonly current = new Map<number, { index: number; stratum: Stratum | undefined }>();
  read = 0;

  constructor(kv: KeyValueStore, report: (problem: FsckProblem) => void) {
    this.#kv = kv;
    this.#report = report;
  }

  async #next(level: number): Promise<{ index: number; bytes: Uint8Array } | undefined> {
    let cursor = this.#cursors.get(level);
    if (cursor === undefined) {
      cursor = scan(
        this.#kv,
        Uint8Array.of(TAG.tile, level),
        Uint8Array.of(TAG.tile, level + 1),
        64,
      );
      this.#cursors.set(level, cursor);
    }
    const r = await cursor.next();
    if (r.done) return undefined;
    const [key, bytes] = r.value;
    this.read++;
    return { index: getUint64(key, 2, "tile key"), bytes };
  }

  /** The stored stratum (level, index); indices of one level must be asked for in order. */
  async get(level: number, index: number): Promise<Stratum | undefined> {
    const here = this.current.get(level);
    if (here?.index === index) return here.stratum;
    if (!this.#ahead.has(level)) this.#ahead.set(level, await this.#next(level));
    let ahead = this.#ahead.get(level);
    // Stored strata before the one asked for were never reached: the walk visits every tile in
    // order, so this only happens after a tile key was damaged.
    while (ahead !== undefined && ahead.index < index) {
      this.#report({
        kind: "tile",
        message: `stored tile ${level}/${ahead.index} is out of place (the tree reached tile ${level}/${index})`,
      });
      ahead = await this.#next(level);
    }
    let stratum: Stratum | undefined;
    if (ahead === undefined || ahead.index > index) {
      this.#report({ kind: "tile", message: `tile ${level}/${index} is missing from storage` });
    } else {
      try {
        stratum = Stratum.decode(level, index, ahead.bytes);
      } catch (e) {
        this.#report({
          kind: "tile",
          message: `stored tile ${level}/${index} does not decode: ${(e as Error).message}`,
        });
      }
      ahead = await this.#next(level);
    }
    this.#ahead.set(level, ahead);
    this.current.set(level, { index, stratum });
    return stratum;
  }

  /** Stored strata of `level` past the last one reached (they lie beyond the tree). */
  async *rest(level: number): AsyncGenerator<number> {
    if (!this.#ahead.has(level)) this.#ahead.set(level, await this.#next(level));
    for (let a = this.#ahead.get(level); a !== undefined; a = await this.#next(level)) {
      yield a.index;
    }
    this.#ahead.set(level, undefined);
  }
}

/**
 * A leaf whose hash differs from the tile's level-0 hash, until its parent node tells which of
 * the two is damaged: the stored parent agrees with one of them (or with neither).
 */
interface Disputed {
  readonly index: number;
  readonly own: Uint8Array;
  readonly stored: Uint8Array;
}

/** The tree of leaves [0, count), re-derived, its complete nodes compared with the stored ones. */
export class DerivedTree {
  /** The compact range's subtree hashes, left to right. */
  readonly hashes: Uint8Array[] = [];
  count = 0;
  /** Stored nodes compared. */
  nodes = 0;
  readonly #strata: StoredStrata;
  readonly #report: Report;
  /** The disputed leaf among the range's last subtree, if that subtree is a lone leaf. */
  #disputed: Disputed | undefined;

  constructor(strata: StoredStrata, report: Report) {
    this.#strata = strata;
    this.#report = report;
  }

  root(): Uint8Array {
    return foldRight(this.hashes) ?? EMPTY_ROOT;
  }

  /** The last leaf of a tree of odd size has no parent to settle a dispute. */
  finish(): void {
    if (this.#disputed !== undefined) this.#settle(this.#disputed, "unknown");
    this.#disputed = undefined;
  }

  /** The stored node (level, index), or undefined (a missing tile is reported once). */
  async #storedNode(level: number, index: number) {
    const at = nodeAddress(level, index);
    const stratum = await this.#strata.get(at.tileLevel, at.tileIndex);
    if (stratum === undefined) return { hash: undefined, tileMissing: true };
    return { hash: stratum.node(at.row, at.position), tileMissing: false };
  }

  #settle(d: Disputed, verdict: "leaf" | "tile" | "unknown"): void {
    const tile = tileName(0, d.index);
    this.#report(
      verdict === "tile"
        ? {
            kind: "tile",
            index: d.index,
            message: `${tile}: the level-0 hash of entry ${d.index} is ${short(d.stored)}, the entry hashes to ${short(d.own)} and its parent node agrees with the entry`,
          }
        : {
            kind: "entry",
            index: d.index,
            message: `entry ${d.index}: its stored leaf hashes to ${short(d.own)}, ${tile} holds ${short(d.stored)}`,
          },
    );
  }

  /**
   * Appends leaf `index` whose hash is `leafHash` (undefined: the leaf is missing) and checks
   * every node it completes. Returns whether the leaf agrees with the tile.
   */
  async append(index: number, leafHash: Uint8Array | undefined): Promise<boolean> {
    const stored = await this.#storedNode(0, index);
    this.nodes++;
    let hash = leafHash;
    let mine: Disputed | undefined;
    if (leafHash === undefined) {
      this.#report({ kind: "entry", index, message: `entry ${index} is missing from storage` });
      hash = stored.hash ?? new Uint8Array(HASH_SIZE);
    } else if (stored.hash === undefined) {
      if (!stored.tileMissing) {
        this.#report({
          kind: "tile",
          index,
          message: `${tileName(0, index)} lacks the level-0 hash of entry ${index}`,
        });
      }
    } else if (!bytesEqual(leafHash, stored.hash)) {
      // The tile's hash goes on up for now: if the leaf is the damaged one, nothing above fails.
      mine = { index, own: leafHash, stored: stored.hash };
      hash = stored.hash;
    }
    const unsettled = await this.#climb(index, hash!, mine);
    if (unsettled !== undefined) this.#disputed = unsettled; // a left child: no parent yet
    this.count = index + 1;
    return (
      leafHash !== undefined && (stored.hash === undefined || bytesEqual(leafHash, stored.hash))
    );
  }

  /**
   * Merges the new leaf's hash up the right edge (a right child merges with its left sibling,
   * the range's last subtree), comparing each completed node with the stored one. Returns the
   * new leaf's dispute if it is still open (it is a left child).
   */
  async #climb(index: number, leaf: Uint8Array, mine: Disputed | undefined) {
    let hash = leaf;
    let level = 0;
    let at = index;
    let open = mine;
    while (at % 2 === 1) {
      const left = this.hashes.pop()!;
      level++;
      at = (at - 1) / 2;
      let parent = hashChildren(left, hash);
      const s = await this.#storedNode(level, at);
      this.nodes++;
      if (level === 1 && (this.#disputed !== undefined || open !== undefined)) {
        parent = this.#judge(left, hash, parent, s.hash, open);
        open = undefined;
      }
      if (s.hash === undefined) {
        if (!s.tileMissing) {
          this.#report({
            kind: "tile",
            message: `${tileName(level, at)} lacks node ${level}/${at}`,
          });
        }
      } else if (!bytesEqual(parent, s.hash)) {
        this.#report({
          kind: "tile",
          message: `${tileName(level, at)}: node ${level}/${at} is ${short(s.hash)}, the hash of its children is ${short(parent)}`,
        });
      }
      hash = parent;
    }
    this.hashes.push(hash);
    return open;
  }

  /**
   * Settles the disputes under a level-1 node: which of the two hashes of a disputed leaf does
   * the stored parent agree with? Returns the parent hash to carry on up.
   */
  #judge(
    left: Uint8Array,
    right: Uint8Array,
    parent: Uint8Array,
    stored: Uint8Array | undefined,
    mine: Disputed | undefined,
  ): Uint8Array {
    const l = this.#disputed;
    this.#disputed = undefined;
    let verdict: "leaf" | "tile" | "unknown" = stored === undefined ? "unknown" : "leaf";
    let carried = parent;
    if (stored !== undefined && !bytesEqual(parent, stored)) {
      const tries = [
        [l?.own ?? left, right],
        [left, mine?.own ?? right],
        [l?.own ?? left, mine?.own ?? right],
      ] as const;
      const match = tries.find(([a, b]) => bytesEqual(hashChildren(a, b), stored));
      verdict = match === undefined ? "unknown" : "tile";
      if (match !== undefined) carried = stored;
    }
    if (l !== undefined) this.#settle(l, verdict);
    if (mine !== undefined) this.#settle(mine, verdict);
    return carried;
  }
}
