/**
 * @module
 * C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths, which tiles a tree serves, hash tile
 * and entry bundle encodings, and building tiles from leaf hashes. Pure: no I/O, no node:*.
 *
 * Layout (tlog-tiles §"Merkle Tree", §"Partial Tiles", §"Log entries"):
 * - Hash tile n at level l holds the Merkle Tree Hashes of the nodes at tree height 8·l with
 *   node indices n·256 .. n·256+255; node (h, i) is MTH(D[i·2^h : (i+1)·2^h]) (RFC 6962 §2.1).
 *   It is served at `tile/<l>/<N>`, 32 bytes per hash, 8,192 bytes when full.
 * - A tree of size s has floor(s / 256^l) nodes at level l. Full tiles cover the first
 *   floor(nodes / 256)·256 of them; the partial tile holds the remaining `nodes mod 256`
 *   (1..255) and is named `<N>.p/<W>`. Empty tiles do not exist. Only full tiles are hashed into
 *   the level above, so the node at level l+1 is the root of a full tile at level l.
 * - Entry bundle n (`tile/entries/<N>[.p/<W>]`) holds entries n·256 .. n·256+W-1, each as a
 *   big-endian uint16 length then the bytes; so an entry is at most 65,535 bytes.
 * - `<N>` is written in 3-digit groups, every group but the last prefixed by `x`
 *   (1234067 → `x001/x234/067`). Paths are canonical: exactly one path names a tile, and
 *   {@link parseTilePath} accepts only what {@link formatTilePath} writes.
 *
 * Invariants: sizes and indices are safe integers (0..2^53-1). No bitwise operator touches them
 * (they truncate to 32 bits): arithmetic uses division by powers of two (exact in binary
 * floating point), `%`, and `(n - n % d) / d` (an exact integer quotient) for other divisors.
 *
 * Over 400 lines: paths, which tiles a tree serves, and the two encodings are one spec section
 * each, kept together as the spec keeps them.
 */
import { clip } from "./bytes.js";
import { check, VellumError } from "./errors.js";
import { checkSize } from "./merkle.js";
import { HASH_SIZE, hashChildren } from "./rfc6962.js";

/** log2 of the number of hashes in a full tile. */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile, entries in a full bundle. */
export const TILE_WIDTH = 256;
/** The highest level a tile path may name (tlog-tiles: `<L>` is 0..63). */
export const MAX_TILE_LEVEL = 63;
/** Largest entry an entry bundle can hold (its length is a big-endian uint16). */
export const MAX_ENTRY_SIZE = 65535;
/** Bytes in a full hash tile. */
export const FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE;

/** A hash tile: `level` 0..63, `index` 0..2^53-1, `width` 1..256 (256 = full). */
export interface HashTileId {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** An entry bundle: the entries of the leaves the level-0 tile with the same index covers. */
export interface EntryBundleId {
  readonly level: "entries";
  readonly index: number;
  readonly width: number;
}

/** Any resource under `tile/`. Narrow with `tile.level === "entries"` or {@link isEntryBundle}. */
export type TileId = HashTileId | EntryBundleId;

/** A tile or bundle together with its encoded bytes, as served. */
export interface TileData<T extends TileId = TileId> {
  readonly tile: T;
  readonly data: Uint8Array;
}

export function isEntryBundle(tile: TileId): tile is EntryBundleId {
  return tile.level === "entries";
}

// ---------------------------------------------------------------------------------------------
// Paths

function checkTileId(tile: TileId): void {
  if (tile.level !== "entries") {
    check(
      Number.isInteger(tile.level) && tile.level >= 0 && tile.level <= MAX_TILE_LEVEL,
      "OUT_OF_RANGE",
      `tile.level must be an integer 0..${MAX_TILE_LEVEL} or "entries", got ${tile.level}`,
    );
  }
  check(
    Number.isSafeInteger(tile.index) && tile.index >= 0,
    "OUT_OF_RANGE",
    `tile.index must be an integer 0..2^53-1, got ${tile.index}`,
  );
  check(
    Number.isInteger(tile.width) && tile.width >= 1 && tile.width <= TILE_WIDTH,
    "OUT_OF_RANGE",
    `tile.width must be an integer 1..${TILE_WIDTH}, got ${tile.width}`,
  );
}

/** `<N>`: 3-digit groups, all but the last prefixed with "x". */
function formatIndex(index: number): string {
  let rest = index;
  let out = "";
  do {
    const group = rest % 1000;
    out = out === "" ? pad3(group) : `x${pad3(group)}/${out}`;
    rest = (rest - group) / 1000; // an exact integer quotient
  } while (rest > 0);
  return out;
}

function pad3(n: number): string {
  return n.toString().padStart(3, "0");
}

/** `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, relative to the log's prefix. */
export function formatTilePath(tile: TileId): string {
  checkTileId(tile);
  const partial = tile.width === TILE_WIDTH ? "" : `.p/${tile.width}`;
  return `tile/${tile.level}/${formatIndex(tile.index)}${partial}`;
}

// Longest canonical path is "tile/entries/x009/x007/x199/x254/x740/991.p/255" (47 chars).
const MAX_PATH_LENGTH = 64;
const PATH_RE =
  /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/**
 * Parses a tile or entry bundle path (relative to the log's prefix, no leading "/"). Strict:
 * accepts exactly the paths {@link formatTilePath} writes, so leading zeros, a redundant
 * leading group ("x000/001"), a `.p/256` or `.p/0` suffix, levels above 63, "..", "//",
 * query strings and trailing junk are all MALFORMED. An index above 2^53-1 is OUT_OF_RANGE.
 */
export function parseTilePath(path: string): TileId {
  const fail = (why: string) =>
    new VellumError("MALFORMED", `tile path ${JSON.stringify(clip(path))}: ${why}`);
  if (path.length > MAX_PATH_LENGTH) throw fail("too long");
  const m = PATH_RE.exec(path);
  if (m === null) throw fail("not of the form tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]");
  const levelText = m[1]!;
  const indexText = m[2]!;
  const widthText = m[3];

  let level: number | "entries" = "entries";
  if (levelText !== "entries") {
    level = Number(levelText);
    if (level > MAX_TILE_LEVEL) throw fail(`level ${level} is above ${MAX_TILE_LEVEL}`);
  }
  let width = TILE_WIDTH;
  if (widthText !== undefined) {
    width = Number(widthText);
    if (width >= TILE_WIDTH) throw fail(`partial width ${width} is not 1..${TILE_WIDTH - 1}`);
  }
  // Any value above 2^53-1 rounds to at least 2^53, which is not a safe integer.
  const index = Number(indexText.replace(/[x/]/g, ""));
  if (!Number.isSafeInteger(index)) {
    throw new VellumError(
      "OUT_OF_RANGE",
      `tile path ${JSON.stringify(path)}: index exceeds 2^53-1`,
    );
  }
  if (formatIndex(index) !== indexText) throw fail("index is not in canonical form");
  if (level === "entries") return { level, index, width };
  return { level, index, width };
}

// ---------------------------------------------------------------------------------------------
// Which tiles a tree serves

function checkLevel(level: number): void {
  check(
    Number.isInteger(level) && level >= 0 && level <= MAX_TILE_LEVEL,
    "OUT_OF_RANGE",
    `level must be an integer 0..${MAX_TILE_LEVEL}, got ${level}`,
  );
}

/** Number of nodes at tile level `level` (tree height 8·level) in a tree of `size` leaves. */
function nodesAtLevel(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level); // division by a power of two is exact
}

/**
 * Width of the partial tile at `level` of a tree of `size` leaves:
 * floor(size / 256^level) mod 256, or 0 when that level has no partial tile.
 * (Level 0 also gives the width of the partial entry bundle.)
 */
export function partialTileWidth(size: number, level: number): number {
  checkSize(size, "size");
  checkLevel(level);
  return nodesAtLevel(size, level) % TILE_WIDTH;
}

/**
 * Every resource a log of tree size `size` serves: hash tiles by level then index, then entry
 * bundles by index. Lazy, since a large tree serves ~size/255 resources.
 */
export function tilesForSize(size: number): Generator<TileId, void, undefined> {
  return tilesBetween(0, size);
}

/**
 * The resources a tree of size `newSize` serves that a tree of size `oldSize` does not serve
 * under the same path: the full tiles completed between the two sizes and the partial tiles at
 * the right edge of `newSize`. Same order as {@link tilesForSize}. A sequencer that grows the
 * tree from `oldSize` to `newSize` writes exactly these.
 */
export function tilesBetween(oldSize: number, newSize: number): Generator<TileId, void, undefined> {
  checkSize(oldSize, "oldSize");
  checkSize(newSize, "newSize");
  check(oldSize <= newSize, "OUT_OF_RANGE", `oldSize ${oldSize} exceeds newSize ${newSize}`);
  return generateTiles(oldSize, newSize);
}

function* generateTiles(oldSize: number, newSize: number): Generator<TileId, void, undefined> {
  for (let level = 0; level <= MAX_TILE_LEVEL; level++) {
    const oldNodes = nodesAtLevel(oldSize, level);
    const newNodes = nodesAtLevel(newSize, level);
    // Unchanged here means unchanged at every level above, too.
    if (oldNodes === newNodes) break;
    for (const [index, width] of changedTiles(oldNodes, newNodes)) yield { level, index, width };
  }
  for (const [index, width] of changedTiles(oldSize, newSize)) {
    yield { level: "entries", index, width };
  }
}

/** [index, width] of the tiles of one level that change when it grows from old to new nodes. */
function* changedTiles(oldNodes: number, newNodes: number): Generator<[number, number]> {
  if (oldNodes === newNodes) return;
  const fullEnd = (newNodes - (newNodes % TILE_WIDTH)) / TILE_WIDTH;
  for (let n = (oldNodes - (oldNodes % TILE_WIDTH)) / TILE_WIDTH; n < fullEnd; n++) {
    yield [n, TILE_WIDTH];
  }
  if (newNodes % TILE_WIDTH > 0) yield [fullEnd, newNodes % TILE_WIDTH];
}

/** Where a Merkle node lives in the tiles of a tree. */
export interface NodeInTile {
  /** The tile, with the width it has in the tree of the given size. */
  readonly tile: HashTileId;
  /** Position in the tile of the first hash the node covers. */
  readonly offset: number;
  /**
   * How many consecutive hashes the node covers: 1 when the node's height is a multiple of 8
   * (the node is stored in the tile), else 2^(height mod 8) hashes whose subtree root
   * ({@link perfectSubtreeRoot}) is the node.
   */
  readonly count: number;
}

/**
 * The tile of a tree of `size` leaves that holds node (`height`, `index`), the root of leaves
 * [index·2^height, (index+1)·2^height). The node must be complete in that tree.
 */
export function tileForNode(height: number, index: number, size: number): NodeInTile {
  check(
    Number.isInteger(height) && height >= 0 && height <= 63,
    "OUT_OF_RANGE",
    `height must be an integer 0..63, got ${height}`,
  );
  check(
    Number.isSafeInteger(index) && index >= 0,
    "OUT_OF_RANGE",
    `index must be an integer 0..2^53-1, got ${index}`,
  );
  checkSize(size, "size");
  // (index + 1) * 2^height <= size, without overflowing: size / 2^height is exact.
  check(
    index < Math.floor(size / 2 ** height),
    "OUT_OF_RANGE",
    `node (height ${height}, index ${index}) is not complete in a tree of size ${size}`,
  );
  const level = Math.floor(height / TILE_HEIGHT);
  const count = 2 ** (height - level * TILE_HEIGHT);
  const first = index * count; // first covered node at height 8·level; < size, so exact
  const offset = first % TILE_WIDTH;
  const tileIndex = (first - offset) / TILE_WIDTH;
  const width = Math.min(TILE_WIDTH, nodesAtLevel(size, level) - tileIndex * TILE_WIDTH);
  return { tile: { level, index: tileIndex, width }, offset, count };
}

// ---------------------------------------------------------------------------------------------
// Hash tiles

/** Concatenates 1..256 hashes of 32 bytes into a hash tile. */
export function encodeHashTile(hashes: readonly Uint8Array[]): Uint8Array {
  check(hashes.length >= 1, "OUT_OF_RANGE", "a hash tile holds at least one hash");
  check(
    hashes.length <= TILE_WIDTH,
    "TOO_LARGE",
    `a hash tile holds at most ${TILE_WIDTH} hashes, got ${hashes.length}`,
  );
  const out = new Uint8Array(hashes.length * HASH_SIZE);
  hashes.forEach((h, i) => {
    check(h.length === HASH_SIZE, "MALFORMED", `hashes[${i}] must be ${HASH_SIZE} bytes`);
    out.set(h, i * HASH_SIZE);
  });
  return out;
}

/**
 * Splits a hash tile into its hashes (copies). The tile must hold 1..256 whole hashes and,
 * when `width` is given, exactly `width` of them; anything else is MALFORMED.
 */
export function decodeHashTile(bytes: Uint8Array, width?: number): Uint8Array[] {
  const fail = (why: string) => new VellumError("MALFORMED", `hash tile: ${why}`);
  if (bytes.length === 0 || bytes.length % HASH_SIZE !== 0) {
    throw fail(`length ${bytes.length} is not a positive multiple of ${HASH_SIZE}`);
  }
  const count = bytes.length / HASH_SIZE;
  if (count > TILE_WIDTH) throw fail(`${count} hashes, more than ${TILE_WIDTH}`);
  if (width !== undefined && count !== width) throw fail(`${count} hashes, expected ${width}`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(bytes.slice(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  return out;
}

/**
 * RFC 6962 root of a perfect subtree given its 2^k bottom hashes (k >= 0), bottom-up pairwise.
 * The root of a full tile's 256 hashes is the tile's entry in the level above.
 */
export function perfectSubtreeRoot(hashes: readonly Uint8Array[]): Uint8Array {
  const n = hashes.length;
  check(
    n >= 1 && Number.isInteger(Math.log2(n)),
    "OUT_OF_RANGE",
    `a perfect subtree has a power-of-two number of hashes, got ${n}`,
  );
  let row = hashes;
  while (row.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < row.length; i += 2) next.push(hashChildren(row[i]!, row[i + 1]!));
    row = next;
  }
  check(row[0]!.length === HASH_SIZE, "MALFORMED", `hashes must be ${HASH_SIZE} bytes`);
  return row[0]!;
}

/**
 * Builds a hash tile's bytes from a node source: `readNode(height, index)` returns the hash of
 * node (height, index) (see the module header); it is called for height 8·level and indices
 * index·256 .. index·256+width-1, in order.
 */
export function buildHashTile(
  tile: HashTileId,
  readNode: (height: number, index: number) => Uint8Array,
): Uint8Array {
  checkTileId(tile);
  check(typeof tile.level === "number", "OUT_OF_RANGE", "buildHashTile needs a hash tile");
  const first = tile.index * TILE_WIDTH;
  check(
    Number.isSafeInteger(first + tile.width - 1),
    "OUT_OF_RANGE",
    `tile index ${tile.index} covers nodes beyond 2^53-1`,
  );
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < tile.width; i++) hashes.push(readNode(tile.level * TILE_HEIGHT, first + i));
  return encodeHashTile(hashes);
}

/**
 * Incremental tile building for a sequencer. Grows the tiles of a tree of size `oldSize` by the
 * leaf hashes of entries oldSize .. oldSize+leafHashes.length-1 and returns every hash tile that
 * changes, with its bytes, in {@link tilesBetween} order (hash tiles only).
 *
 * `readPartial(tile)` returns the bytes of a partial tile the old tree serves; it is called
 * only for the right-edge partial tile of a level that grows. Work is proportional to the new
 * hashes plus those partial tiles; full tiles already written are never read.
 */
export function appendHashTiles(
  oldSize: number,
  readPartial: (tile: HashTileId) => Uint8Array,
  leafHashes: readonly Uint8Array[],
): TileData<HashTileId>[] {
  checkSize(oldSize, "oldSize");
  checkSize(oldSize + leafHashes.length, "oldSize + leafHashes.length");
  const out: TileData<HashTileId>[] = [];
  let added: readonly Uint8Array[] = leafHashes; // new nodes at the current level
  for (let level = 0; added.length > 0; level++) {
    const oldNodes = nodesAtLevel(oldSize, level);
    const carried = oldNodes % TILE_WIDTH;
    const firstTile = (oldNodes - carried) / TILE_WIDTH;
    const row =
      carried === 0
        ? added
        : [
            ...decodeHashTile(readPartial({ level, index: firstTile, width: carried }), carried),
            ...added,
          ];
    const above: Uint8Array[] = [];
    for (let off = 0; off < row.length; off += TILE_WIDTH) {
      const hashes = row.slice(off, off + TILE_WIDTH);
      const tile = { level, index: firstTile + off / TILE_WIDTH, width: hashes.length };
      out.push({ tile, data: encodeHashTile(hashes) });
      if (hashes.length === TILE_WIDTH) above.push(perfectSubtreeRoot(hashes));
    }
    added = above;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Entry bundles

/**
 * Encodes 1..256 entries as an entry bundle: each a big-endian uint16 length, then its bytes.
 * An entry over {@link MAX_ENTRY_SIZE} bytes, or more than 256 entries, is TOO_LARGE.
 */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  check(entries.length >= 1, "OUT_OF_RANGE", "an entry bundle holds at least one entry");
  check(
    entries.length <= TILE_WIDTH,
    "TOO_LARGE",
    `an entry bundle holds at most ${TILE_WIDTH} entries, got ${entries.length}`,
  );
  let length = 0;
  entries.forEach((e, i) => {
    check(
      e.length <= MAX_ENTRY_SIZE,
      "TOO_LARGE",
      `entries[${i}] is ${e.length} bytes; an entry is at most ${MAX_ENTRY_SIZE} bytes`,
    );
    length += 2 + e.length;
  });
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const e of entries) {
    view.setUint16(off, e.length);
    out.set(e, off + 2);
    off += 2 + e.length;
  }
  return out;
}

/**
 * Splits an entry bundle into its entries (copies). Strict: a truncated length or entry,
 * trailing bytes, zero or more than 256 entries, or (when `width` is given) any other count
 * than `width` is MALFORMED.
 */
export function decodeEntryBundle(bytes: Uint8Array, width?: number): Uint8Array[] {
  const out = entryBundleViews(bytes, width);
  for (let i = 0; i < out.length; i++) out[i] = out[i]!.slice();
  return out;
}

/**
 * The entries of a bundle as views of `bytes` (no copies), checked as `decodeEntryBundle`
 * checks them: for a caller that holds the bundle and will not change it.
 */
export function entryBundleViews(bytes: Uint8Array, width?: number): Uint8Array[] {
  const fail = (why: string) => new VellumError("MALFORMED", `entry bundle: ${why}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (out.length === TILE_WIDTH) throw fail(`more than ${TILE_WIDTH} entries`);
    if (off + 2 > bytes.length) throw fail(`truncated length prefix at offset ${off}`);
    const length = view.getUint16(off);
    if (off + 2 + length > bytes.length) {
      throw fail(`entry ${out.length} at offset ${off} runs past the end (${length} bytes)`);
    }
    out.push(bytes.subarray(off + 2, off + 2 + length));
    off += 2 + length;
  }
  if (out.length === 0) throw fail("empty");
  if (width !== undefined && out.length !== width) {
    throw fail(`${out.length} entries, expected ${width}`);
  }
  return out;
}

/**
 * Incremental bundle building, the entry-bundle twin of {@link appendHashTiles}: returns the
 * bundles that change when entries oldSize .. oldSize+entries.length-1 are appended, in index
 * order. `readPartial(bundle)` returns the bytes of the old tree's partial bundle.
 */
export function appendEntryBundles(
  oldSize: number,
  readPartial: (bundle: EntryBundleId) => Uint8Array,
  entries: readonly Uint8Array[],
): TileData<EntryBundleId>[] {
  checkSize(oldSize, "oldSize");
  checkSize(oldSize + entries.length, "oldSize + entries.length");
  if (entries.length === 0) return [];
  const carried = oldSize % TILE_WIDTH;
  const firstBundle = (oldSize - carried) / TILE_WIDTH;
  const row =
    carried === 0
      ? entries
      : [
          ...decodeEntryBundle(
            readPartial({ level: "entries", index: firstBundle, width: carried }),
            carried,
          ),
          ...entries,
        ];
  const out: TileData<EntryBundleId>[] = [];
  for (let off = 0; off < row.length; off += TILE_WIDTH) {
    const chunk = row.slice(off, off + TILE_WIDTH);
    const tile: EntryBundleId = {
      level: "entries",
      index: firstBundle + off / TILE_WIDTH,
      width: chunk.length,
    };
    out.push({ tile, data: encodeEntryBundle(chunk) });
  }
  return out;
}
