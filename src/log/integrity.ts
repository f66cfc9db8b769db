/**
 * @module
 * Never serve what does not verify. Every leaf a read returns (an entry, a page, a receipt, an
 * entry bundle) is checked before it leaves the log: the RFC 6962 leaf hash of its stored bytes
 * must equal the tree's stored level-0 hash at its index (row 0 of the level-0 stratum, usually
 * already in memory), and a range read must hold every index it covers, each under its own key.
 * A leaf that fails is a damaged disk or file, never the caller's fault: the read fails with
 * INTEGRITY_FAILURE (HTTP 500), the failure is reported (the server logs it, "integrity failure:
 * …", and counts it in /metrics), and no other bytes are served in its place.
 *
 * The check costs one SHA-256 per leaf (which the reads computed anyway, for the leaf hash they
 * answer with) and one 32-byte comparison; it needs no extra storage read when the stratum is
 * cached (`npm run bench:reads` measures it).
 */
import { bytesEqual, hexEncode } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";
import { hashLeaf } from "../core/rfc6962.js";
import { TILE_WIDTH } from "../core/tiles.js";
import type { Tree } from "./tree.js";

/**
 * What did not verify: a stored leaf against the tree's level-0 hash (`leaf`), an entry missing
 * inside the published tree (`missing`), or a lookup index (id, leaf hash, payload) that points
 * at an entry that is not the one it names (`lookup`).
 */
export type IntegrityKind = "leaf" | "missing" | "lookup";

export interface IntegrityFailure {
  readonly kind: IntegrityKind;
  /** The entry's index. */
  readonly index: number;
  /** What differed, for the server's log. */
  readonly detail: string;
}

/** A stored leaf that verified, with the index its key holds and its leaf hash. */
export interface VerifiedLeaf {
  readonly index: number;
  readonly leaf: Uint8Array;
  readonly leafHash: Uint8Array;
}

const short = (hash: Uint8Array | undefined) =>
  hash === undefined ? "none" : `${hexEncode(hash).slice(0, 16)}…`;

export class ReadVerifier {
  readonly #report: ((failure: IntegrityFailure) => void) | undefined;

  constructor(report?: (failure: IntegrityFailure) => void) {
    this.#report = report;
  }

  /** Reports a failure; returns the error to throw. */
  fail(kind: IntegrityKind, index: number, detail: string): VellumError {
    try {
      this.#report?.({ kind, index, detail });
    } catch {
      // A failing hook (metrics, log line) must not turn an integrity failure into another error.
    }
    return new VellumError(
      "INTEGRITY_FAILURE",
      `stored entry ${index} does not verify against the tree (${kind}); nothing was served, see the server log`,
    );
  }

  /** The verified leaf hash of `leaf`, stored at `index` (undefined: the entry is missing). */
  async leaf(tree: Tree, index: number, leaf: Uint8Array | undefined): Promise<Uint8Array> {
    if (leaf === undefined) {
      throw this.fail("missing", index, `entry ${index} is missing from storage`);
    }
    const leafHash = hashLeaf(leaf);
    const [stored] = await tree.leafHashes(index, index + 1);
    if (stored === undefined || !bytesEqual(leafHash, stored)) {
      throw this.fail(
        "leaf",
        index,
        `entry ${index}: its stored leaf hashes to ${short(leafHash)}, the tree's level-0 hash is ${short(stored)} (tile 0/${Math.floor(index / TILE_WIDTH)})`,
      );
    }
    return leafHash;
  }

  /**
   * Checks the rows of a range read of entries [start, end) (LogStore.leafRange): each row must
   * hold the next index (a missing entry is a failure, never a shifted row) and its leaf must
   * verify.
   */
  async rows(
    tree: Tree,
    start: number,
    end: number,
    rows: readonly (readonly [number, Uint8Array])[],
  ): Promise<VerifiedLeaf[]> {
    const stored = await tree.leafHashes(start, end);
    const out: VerifiedLeaf[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [index, leaf] = rows[i]!;
      if (index !== start + i) {
        throw this.fail("missing", start + i, `entry ${start + i} is missing from storage`);
      }
      const leafHash = hashLeaf(leaf);
      const expected = stored[i];
      if (expected === undefined || !bytesEqual(leafHash, expected)) {
        throw this.fail(
          "leaf",
          index,
          `entry ${index}: its stored leaf hashes to ${short(leafHash)}, the tree's level-0 hash is ${short(expected)} (tile 0/${Math.floor(index / TILE_WIDTH)})`,
        );
      }
      out[i] = { index, leaf, leafHash };
    }
    if (rows.length < end - start) {
      const index = start + rows.length;
      throw this.fail("missing", index, `entry ${index} is missing from storage`);
    }
    return out;
  }
}
