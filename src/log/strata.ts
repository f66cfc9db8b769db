/**
 * @module
 * Stored tiles ("strata"): what Vellum keeps per C2SP hash tile so that any Merkle node is one
 * tile read away. A C2SP tile at level L holds only the nodes of tree level 8L (row 0); a proof
 * also needs nodes of the 7 levels above it, which would cost up to 255 hashes to recompute from
 * row 0. So a stratum stores rows 0..7: row r holds the nodes of tree level 8L+r under the tile,
 * floor(W / 2^r) of them when row 0 has W. The served C2SP tile is row 0 (or a prefix of it for a
 * partial tile of an earlier, smaller tree).
 *
 * Encoding (the value under key "t" L N): u16 big-endian W, then rows 0..7 in order, each its
 * hashes back to back. A full stratum is 2 + 510·32 = 16,322 bytes.
 *
 * In memory the log's strata use the full-size layout (each row's full capacity at once), so the
 * right-edge strata the sequencer grows never reallocate; the index's many short list trees use
 * small rows that grow as nodes arrive (`small`).
 */
import { check, VellumError } from "../core/errors.js";
import { HASH_SIZE, hashChildren } from "../core/rfc6962.js";
import { TILE_HEIGHT, TILE_WIDTH } from "../core/tiles.js";

/** Hash slots of row r in a full stratum: 256, 128, ..., 2. */
const ROW_CAPACITY = Array.from({ length: TILE_HEIGHT }, (_, r) => TILE_WIDTH / 2 ** r);
/** Offset (in hashes) of row r in the full-size layout. */
const ROW_OFFSET = ROW_CAPACITY.map((_, r) => ROW_CAPACITY.slice(0, r).reduce((a, b) => a + b, 0));
const FULL_HASHES = ROW_CAPACITY.reduce((a, b) => a + b, 0); // 510

export class Stratum {
  readonly level: number;
  readonly index: number;
  /** Row r's hashes, back to back (capacity ≥ its count; views of one buffer when full-size). */
  readonly #rows: Uint8Array[];
  /** Number of hashes present in each row. */
  readonly #counts: number[];

  private constructor(level: number, index: number, rows: Uint8Array[], counts: number[]) {
    this.level = level;
    this.index = index;
    this.#rows = rows;
    this.#counts = counts;
  }

  /** The rows of the full-size layout, as views of one buffer. */
  static #fullRows(buf: Uint8Array = new Uint8Array(FULL_HASHES * HASH_SIZE)): Uint8Array[] {
    return ROW_CAPACITY.map((n, r) =>
      buf.subarray(ROW_OFFSET[r]! * HASH_SIZE, (ROW_OFFSET[r]! + n) * HASH_SIZE),
    );
  }

  /**
   * A new, empty stratum. `small`: rows start small and grow as nodes arrive (for the many
   * short trees of the index's lists); otherwise the full-size layout is allocated at once, so
   * the log's right-edge strata never reallocate.
   */
  static empty(level: number, index: number, small = false): Stratum {
    const rows = small ? ROW_CAPACITY.map(() => EMPTY_ROW) : Stratum.#fullRows();
    return new Stratum(level, index, rows, Array(8).fill(0));
  }

  /**
   * The stratum whose row 0 is `hashes` (1 to 256 of them), its upper rows computed: what the
   * tree would hold after appending them, for a caller that keeps a partial tile's leaves itself.
   */
  static fromRow0(
    level: number,
    index: number,
    hashes: readonly Uint8Array[],
    small = false,
  ): Stratum {
    check(
      hashes.length >= 1 && hashes.length <= TILE_WIDTH,
      "INTERNAL",
      "a stratum holds 1 to 256 nodes",
    );
    const stratum = Stratum.empty(level, index, small);
    let row = hashes;
    for (let r = 0; r < TILE_HEIGHT && row.length > 0; r++) {
      for (const [position, hash] of row.entries()) stratum.push(r, position, hash);
      const up: Uint8Array[] = [];
      for (let j = 0; 2 * j + 1 < row.length; j++)
        up.push(hashChildren(row[2 * j]!, row[2 * j + 1]!));
      row = up;
    }
    return stratum;
  }

  /** Width of row 0: how many tree-level-8L nodes the tile holds (1..256). */
  get width(): number {
    return this.#counts[0]!;
  }

  get full(): boolean {
    return this.#counts[0] === TILE_WIDTH;
  }

  /** Appends the next node of row `row` (nodes arrive left to right, each row in order). */
  push(row: number, position: number, hash: Uint8Array): void {
    // A plain if, not check(): this runs for every node appended, and check()'s template-string
    // message would be built on every call.
    if (position !== this.#counts[row]) {
      throw new VellumError(
        "INTERNAL",
        `stratum ${this.level}/${this.index} row ${row}: node ${position} out of order`,
      );
    }
    const at = position * HASH_SIZE;
    let buf = this.#rows[row]!;
    if (at + HASH_SIZE > buf.length) {
      const grown = new Uint8Array(
        Math.min(ROW_CAPACITY[row]!, Math.max(4, 2 * (buf.length / HASH_SIZE))) * HASH_SIZE,
      );
      grown.set(buf.subarray(0, at));
      this.#rows[row] = buf = grown;
    }
    buf.set(hash, at);
    this.#counts[row]!++;
  }

  /** Node `position` of row `row`, or undefined when the stratum does not (yet) hold it. */
  node(row: number, position: number): Uint8Array | undefined {
    if (position >= this.#counts[row]!) return undefined;
    const at = position * HASH_SIZE;
    return this.#rows[row]!.subarray(at, at + HASH_SIZE);
  }

  /** The C2SP hash tile: the first `width` hashes of row 0 (default: all it holds). */
  hashTile(width = this.width): Uint8Array | undefined {
    if (width < 1 || width > this.width) return undefined;
    return this.#rows[0]!.slice(0, width * HASH_SIZE);
  }

  encode(): Uint8Array {
    const width = this.width;
    let hashes = 0;
    for (let r = 0; r < TILE_HEIGHT; r++) hashes += Math.floor(width / 2 ** r);
    const out = new Uint8Array(2 + hashes * HASH_SIZE);
    out[0] = Math.floor(width / 256);
    out[1] = width % 256;
    let at = 2;
    for (let r = 0; r < TILE_HEIGHT; r++) {
      const n = Math.floor(width / 2 ** r) * HASH_SIZE;
      out.set(this.#rows[r]!.subarray(0, n), at);
      at += n;
    }
    return out;
  }

  /** `small`: a partial stratum's rows are copied at their size (see empty()). */
  static decode(level: number, index: number, bytes: Uint8Array, small = false): Stratum {
    // A stored tile that does not decode is damaged storage, like a leaf that does not verify.
    check(bytes.length >= 2, "INTEGRITY_FAILURE", `stored tile ${level}/${index} is truncated`);
    const width = bytes[0]! * 256 + bytes[1]!;
    let hashes = 0;
    for (let r = 0; r < TILE_HEIGHT; r++) hashes += Math.floor(width / 2 ** r);
    check(
      width >= 1 && width <= TILE_WIDTH && bytes.length === 2 + hashes * HASH_SIZE,
      "INTEGRITY_FAILURE",
      `stored tile ${level}/${index} has a bad length for width ${width}`,
    );
    const counts = ROW_CAPACITY.map((_, r) => Math.floor(width / 2 ** r));
    // A full stratum's encoding is the full-size layout itself: no copy needed.
    if (width === TILE_WIDTH) {
      return new Stratum(level, index, Stratum.#fullRows(bytes.subarray(2)), counts);
    }
    const rows = small ? counts.map((n) => new Uint8Array(n * HASH_SIZE)) : Stratum.#fullRows();
    let at = 2;
    for (let r = 0; r < TILE_HEIGHT; r++) {
      const n = counts[r]! * HASH_SIZE;
      rows[r]!.set(bytes.subarray(at, at + n));
      at += n;
    }
    return new Stratum(level, index, rows, counts);
  }
}

const EMPTY_ROW = new Uint8Array(0);

/** Where tree node (level, index) lives: stratum (tileLevel, tileIndex), row, position. */
export interface NodeAddress {
  readonly tileLevel: number;
  readonly tileIndex: number;
  readonly row: number;
  readonly position: number;
}

export function nodeAddress(level: number, index: number): NodeAddress {
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const row = level - tileLevel * TILE_HEIGHT;
  const perTile = ROW_CAPACITY[row]!; // nodes of this row under one tile
  const tileIndex = Math.floor(index / perTile);
  return { tileLevel, tileIndex, row, position: index - tileIndex * perTile };
}
