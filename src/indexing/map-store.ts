/**
 * @module
 * The index's sparse Merkle map (src/core/smt.ts) kept in a key-value store in tiles of eight
 * levels, so a revision rewrites a few records per changed key (not one per level) and a proof
 * is one read per eight levels.
 *
 * The stored shape is the map's own: a subtree with two or more keys is an inner node, a
 * subtree with one key is that key's leaf where the subtree starts, an empty subtree is nothing.
 * A node is kept as its 65-byte record, which is also exactly what its hash is taken over:
 *
 *   inner  0x01 ‖ left child's hash ‖ right child's hash     hash = SHA-256(record)
 *   leaf   0x00 ‖ key ‖ value                                 hash = SHA-256(record)
 *
 * Tile (tier t, prefix p) holds the nodes at depths [8t, 8t + 8) whose paths start with the
 * t bytes p, in heap order: the node at depth 8t + r whose next r bits are b sits in slot
 * 2^r + b (slots 1 to 255). Stored under "M" ‖ u8 t ‖ p as a 32-byte bitmap of the slots held
 * (slot s: bit 0x80 >> (s mod 8) of byte s div 8) followed by their records in slot order.
 *
 * Keys are never removed (an index list only grows), so an update only turns nothing into a
 * leaf or a leaf into an inner node; inner nodes keep their children's hashes, so an update
 * reads only the tiles on the changed keys' paths, and a proof one tile per tier. An update
 * first loads those tiles, one tier at a time with one read for the tier, then rewrites the
 * paths without waiting on storage, then writes each tile it changed once.
 *
 * Not safe for concurrent use: the index engine (engine.ts) serialises updates and proofs.
 */
import { bytesEqual } from "../core/bytes.js";
import { sha256Into } from "../core/crypto.js";
import { check, VellumError } from "../core/errors.js";
import { LruCache } from "../core/lru.js";
import { EMPTY_HASH, keyBit, type SmtEntry, type SmtProof } from "../core/smt.js";
import type { KeyValueStore, Put, WriteOp } from "../storage/types.js";

const INNER = 1;
const LEAF = 0;
const RECORD = 65;
const BITMAP = 32;
/** Levels per tile. */
const TIER = 8;

/** Set bits of each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let v = b; v !== 0; v >>= 1) n += v & 1;
  return n;
});

/**
 * Tiles of up to this many records find a record's offset from the bitmap (the records before
 * it); larger ones keep a table of offsets. Most tiles below the top two tiers hold a handful
 * of records, and a 512-byte table for each, in a cache of up to a hundred thousand tiles, was
 * most of the index's long-lived memory.
 */
const SPARSE = 16;

/**
 * A tile as held in memory: its stored form itself (bitmap, then the held slots' records in
 * slot order), with room to grow, and (above SPARSE records) where each slot's record starts.
 * Records are never separate objects: a revision makes millions of them, and a 65-byte typed
 * array is one byte too large for V8's heap, so each would be a buffer of its own for the
 * collector to track.
 *
 * Offsets move when a slot is inserted before them: read a record's offset again after
 * anything may have written to the tile.
 */
class MapTile {
  #bytes: Uint8Array;
  #length: number;
  /** Byte offset of each held slot's record (0: not held); only above SPARSE records. */
  #offsets: Uint16Array | undefined;
  count = 0;
  /** The weight the cache holds it at (fixed while it is in the cache). */
  cacheWeight = 0;

  constructor(bytes: Uint8Array = new Uint8Array(BITMAP + 4 * RECORD), length = BITMAP) {
    this.#bytes = bytes;
    this.#length = length;
  }

  /** The tile's bytes: a record's kind at its offset, its two halves at +1 and +33. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Where slot's record starts, or 0 when the slot is not held. */
  at(slot: number): number {
    if (this.#offsets !== undefined) return this.#offsets[slot]!;
    const bytes = this.#bytes;
    if ((bytes[slot >> 3]! & (0x80 >> (slot & 7))) === 0) return 0;
    return this.#offsetBefore(slot);
  }

  /** Where slot's record starts or would start: after the records of the slots before it. */
  #offsetBefore(slot: number): number {
    const bytes = this.#bytes;
    const byte = slot >> 3;
    let before = POPCOUNT[bytes[byte]! & ((0xff00 >> (slot & 7)) & 0xff)]!;
    for (let i = 0; i < byte; i++) before += POPCOUNT[bytes[i]!]!;
    return BITMAP + RECORD * before;
  }

  /** Writes slot's record (held or new), RECORD bytes; returns its offset. */
  put(slot: number, record: Uint8Array): number {
    let at = this.at(slot);
    if (at === 0) at = this.#insert(slot);
    this.#bytes.set(record, at);
    return at;
  }

  #insert(slot: number): number {
    const at = this.#offsetBefore(slot);
    if (this.#length + RECORD > this.#bytes.length) {
      const grown = new Uint8Array(
        Math.min(BITMAP + 255 * RECORD, Math.max(this.#length + RECORD, 2 * this.#bytes.length)),
      );
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    this.#bytes.copyWithin(at + RECORD, at, this.#length);
    this.#length += RECORD;
    this.#bytes[slot >> 3] = this.#bytes[slot >> 3]! | (0x80 >> (slot & 7));
    this.count++;
    const offsets = this.#offsets;
    if (offsets !== undefined) {
      for (let s = slot + 1; s < 256; s++) {
        if (offsets[s] !== 0) offsets[s] = offsets[s]! + RECORD;
      }
      offsets[slot] = at;
    } else if (this.count > SPARSE) {
      this.#offsets = this.#table();
    }
    return at;
  }

  /** Every held slot's offset, from the bitmap. */
  #table(): Uint16Array {
    const offsets = new Uint16Array(256);
    const bytes = this.#bytes;
    let at = BITMAP;
    for (let s = 1; s < 256; s++) {
      if ((bytes[s >> 3]! & (0x80 >> (s & 7))) === 0) continue;
      offsets[s] = at;
      at += RECORD;
    }
    return offsets;
  }

  /**
   * The tile's stored form: a view of its bytes, not a copy (a copy per changed tile was a
   * buffer malloc'd and swept per key in every revision). Valid until the tile next changes,
   * which is in the next update: the stores copy a value into their write before the write
   * resolves, and updates are serialised behind it (see the class comment).
   */
  encode(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  /** The tile stored as `bytes` (which it keeps: a value read is the reader's own). */
  static decode(bytes: Uint8Array): MapTile {
    const tile = new MapTile(bytes, bytes.length);
    let at = BITMAP;
    for (let s = 1; s < 256; s++) {
      if ((bytes[s >> 3]! & (0x80 >> (s & 7))) === 0) continue;
      check(
        at + RECORD <= bytes.length && (bytes[at] === INNER || bytes[at] === LEAF),
        "STATE_MISMATCH",
        "a stored map tile is corrupt",
      );
      tile.count++;
      at += RECORD;
    }
    check(
      bytes.length >= BITMAP && at === bytes.length && (bytes[0]! & 0x80) === 0,
      "STATE_MISMATCH",
      "a stored map tile is corrupt",
    );
    if (tile.count > SPARSE) tile.#offsets = tile.#table();
    return tile;
  }
}

/** The tile's id (cache and work-set key): u8 tier ‖ the path's first `tier` bytes, as latin1. */
function tileId(path: Uint8Array, tier: number): string {
  let id = String.fromCharCode(tier);
  for (let i = 0; i < tier; i++) id += String.fromCharCode(path[i]!);
  return id;
}

function storedKey(id: string, out: Uint8Array = new Uint8Array(1 + id.length)): Uint8Array {
  out[0] = 0x4d; // "M"
  for (let i = 0; i < id.length; i++) out[1 + i] = id.charCodeAt(i);
  return out;
}

/** Keys for puts, one buffer per length, reused (a Put copies its key before it returns). */
const putKeys: Uint8Array[] = [];

function storedPutKey(id: string): Uint8Array {
  let out = putKeys[id.length];
  if (out === undefined) {
    out = new Uint8Array(1 + id.length);
    putKeys[id.length] = out;
  }
  return storedKey(id, out);
}

/** The slot of the node at `depth` on `path`, in its tier's tile. */
function slotOf(path: Uint8Array, depth: number): number {
  const r = depth & 7;
  return r === 0 ? 1 : (1 << r) | (path[depth >> 3]! >> (8 - r));
}

/** Whether the child's hash at `at` (the record's offset + 1 or + 33) is EMPTY, read in place. */
function isEmptyAt(bytes: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 32; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Offset of a child's hash within a record: left at +1, right at +33. */
const half = (bit: 0 | 1) => (bit === 0 ? 1 : 33);

function compareKeys(a: SmtEntry, b: SmtEntry): number {
  const x = a.key;
  const y = b.key;
  for (let i = 0; i < 32; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * `changes` sorted by key: by each key's first six bytes as a number, then (rarely, for keys
 * that are hashes) the whole key. Sorting the entries with a byte comparison each time was
 * most of an update's cost that was not hashing.
 */
function sortByKey(changes: readonly SmtEntry[]): SmtEntry[] {
  const n = changes.length;
  const prefix = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = changes[i]!.key;
    prefix[i] =
      k[0]! * 2 ** 40 + k[1]! * 2 ** 32 + k[2]! * 2 ** 24 + k[3]! * 2 ** 16 + k[4]! * 256 + k[5]!;
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => prefix[a]! - prefix[b]! || compareKeys(changes[a]!, changes[b]!));
  return order.map((i) => changes[i]!);
}

/** What MapStore.prepare read for an update: the changes in key order and the tiles on their paths. */
export interface PreparedUpdate {
  readonly sorted: readonly SmtEntry[];
  readonly empty: boolean;
  readonly work: Map<string, MapTile>;
}

export class MapStore {
  readonly #kv: KeyValueStore;
  /** Tiles by id, weighed by their records (the top tiers are read by every update and proof). */
  readonly #cache = new LruCache<string, MapTile>(200_000, (t) => t.cacheWeight);
  /** Node records while an update runs (TileUpdate). */
  readonly #scratch = new RecordScratch();
  #root: Uint8Array;

  constructor(kv: KeyValueStore, root: Uint8Array) {
    this.#kv = kv;
    this.#root = root;
  }

  get root(): Uint8Array {
    return this.#root;
  }

  /** Forget cached tiles (after a failed write: the store is the truth). */
  reset(root: Uint8Array): void {
    this.#cache.clear();
    this.#root = root;
  }

  /** The stored tiles of `ids` (undefined where none is stored): cached, or in one read. */
  async #tiles(ids: readonly string[]): Promise<(MapTile | undefined)[]> {
    const out = ids.map((id) => this.#cache.get(id));
    const missing = out.flatMap((t, i) => (t === undefined ? [i] : []));
    if (missing.length === 0) return out;
    const read = await this.#kv.getMany(missing.map((i) => storedKey(ids[i]!)));
    for (let k = 0; k < missing.length; k++) {
      const i = missing[k]!;
      const bytes = read[k];
      if (bytes === undefined) continue;
      const tile = MapTile.decode(bytes);
      out[i] = tile;
      this.#remember(ids[i]!, tile);
    }
    return out;
  }

  #remember(id: string, tile: MapTile): void {
    this.#cache.delete(id);
    tile.cacheWeight = 1 + tile.count;
    this.#cache.set(id, tile);
  }

  /**
   * Sets every key of `changes` (distinct keys) to its value; appends the writes to `ops` and
   * returns the new root (also kept). The caller writes `ops` atomically with the revision, and
   * calls reset() if that write fails.
   */
  async update(changes: readonly SmtEntry[], ops: WriteOp[]): Promise<Uint8Array> {
    return this.commit(await this.prepare(changes), (key, value) =>
      ops.push({ type: "put", key: key.slice(), value: value.slice() }),
    );
  }

  /**
   * update() in two steps, so that a revision can stream its writes: prepare() reads the tiles
   * on the changed keys' paths (it looks at the keys only), commit() rewrites the paths with the
   * values the changes hold by then, gives each changed tile to `put`, and returns the new root
   * (also kept). Nothing may update the map in between.
   */
  async prepare(changes: readonly SmtEntry[]): Promise<PreparedUpdate> {
    const sorted = sortByKey(changes);
    const empty = bytesEqual(this.#root, EMPTY_HASH);
    if (changes.length === 0) return { sorted, empty, work: new Map() };
    return { sorted, empty, work: empty ? new Map() : await this.#load(sorted) };
  }

  commit(prepared: PreparedUpdate, put: Put): Uint8Array {
    const { sorted, empty, work } = prepared;
    if (sorted.length === 0) return this.#root;
    const update = new TileUpdate(work, this.#scratch);
    this.#root = update.root(sorted, empty);
    for (const id of update.changed) {
      const tile = work.get(id)!;
      put(storedPutKey(id), tile.encode());
      this.#remember(id, tile);
    }
    return this.#root;
  }

  /**
   * The stored tiles the changes' paths go through: tier by tier, each change followed through
   * its tile to where its path ends (a leaf, an empty child) or leaves the tile.
   */
  async #load(sorted: readonly SmtEntry[]): Promise<Map<string, MapTile>> {
    const work = new Map<string, MapTile>();
    let front: readonly SmtEntry[] = sorted;
    for (let tier = 0; front.length > 0; tier++) {
      const ids: string[] = [];
      const groups: SmtEntry[][] = [];
      for (const change of front) {
        const id = tileId(change.key, tier);
        if (ids[ids.length - 1] === id) groups[groups.length - 1]!.push(change);
        else {
          ids.push(id);
          groups.push([change]);
        }
      }
      const tiles = await this.#tiles(ids);
      const next: SmtEntry[] = [];
      for (let g = 0; g < tiles.length; g++) {
        const tile = tiles[g];
        if (tile === undefined) throw missingTile(tier);
        work.set(ids[g]!, tile);
        for (const change of groups[g]!) {
          if (leavesTile(tile, change.key, tier)) next.push(change);
        }
      }
      front = next;
    }
    return work;
  }

  /** The proof for `key` (present or absent) in the current map. */
  async prove(key: Uint8Array): Promise<SmtProof> {
    check(key.length === 32, "MALFORMED", "a map key is 32 bytes");
    const siblings: Uint8Array[] = [];
    if (bytesEqual(this.#root, EMPTY_HASH)) return { siblings, terminal: null };
    let tile: MapTile | undefined;
    for (let depth = 0; depth <= 256; depth++) {
      if ((depth & 7) === 0) {
        [tile] = await this.#tiles([tileId(key, depth >> 3)]);
        if (tile === undefined) throw missingTile(depth >> 3);
      }
      const bytes = tile!.bytes;
      const at = tile!.at(slotOf(key, depth));
      if (at === 0) throw missingNode(depth);
      if (bytes[at] === LEAF) {
        return {
          siblings,
          terminal: { key: bytes.slice(at + 1, at + 33), value: bytes.slice(at + 33, at + 65) },
        };
      }
      const bit = keyBit(key, depth);
      const sibling = at + half(bit === 0 ? 1 : 0);
      siblings.push(bytes.slice(sibling, sibling + 32));
      // The path ends at an empty child: nothing stored to read.
      if (isEmptyAt(bytes, at + half(bit))) return { siblings, terminal: null };
    }
    throw new Error("unreachable: a map path longer than 256 bits");
  }
}

/** Whether `key`'s path goes on below `tile` (tier `tier`) through stored nodes. */
function leavesTile(tile: MapTile, key: Uint8Array, tier: number): boolean {
  const bytes = tile.bytes;
  for (let depth = TIER * tier; depth < TIER * (tier + 1); depth++) {
    const at = tile.at(slotOf(key, depth));
    if (at === 0) throw missingNode(depth);
    if (bytes[at] === LEAF) return false;
    if (isEmptyAt(bytes, at + half(keyBit(key, depth)))) return false;
  }
  return true;
}

function missingTile(tier: number): VellumError {
  return new VellumError("STATE_MISMATCH", `a stored map tile (tier ${tier}) is missing`);
}

function missingNode(depth: number): VellumError {
  return new VellumError("STATE_MISMATCH", `a stored map node (depth ${depth}) is missing`);
}

/**
 * Node records while an update is built: the record of the node at depth d (kind ‖ left child's
 * hash ‖ right child's hash) is built in place at 65·(d + 1), where each child, finished first,
 * wrote its hash; the root's hash lands in bytes [1, 33). Each record is hashed from a view made
 * once (`views[d]`), so an update allocates nothing per node: a new array per hash, and a view
 * and copies per record, were most of what it allocated and much of its time.
 */
class RecordScratch {
  readonly bytes = new Uint8Array(65 * 258);
  readonly views: Uint8Array[] = Array.from({ length: 257 }, (_, d) =>
    this.bytes.subarray(65 * (d + 1), 65 * (d + 2)),
  );
}

/**
 * One update's rewrite of the paths, over tiles already loaded (MapStore.#load): no storage
 * reads, so no waiting between levels. Tiles it creates or changes are in `changed`.
 */
class TileUpdate {
  readonly #work: Map<string, MapTile>;
  readonly changed = new Set<string>();
  readonly #scratch: RecordScratch;
  /** The last tile looked up, by the path object and tier it was looked up for. */
  #lastPath: Uint8Array | undefined;
  #lastTier = -1;
  #lastId = "";

  constructor(work: Map<string, MapTile>, scratch: RecordScratch) {
    this.#work = work;
    this.#scratch = scratch;
  }

  /** The new root: updates the whole map over `changes` (sorted). */
  root(changes: readonly SmtEntry[], empty: boolean): Uint8Array {
    this.#subtree(changes, 0, changes.length, 0, 0, empty);
    return this.#scratch.bytes.slice(1, 33);
  }

  /**
   * Updates the subtree at `depth` holding changes[lo, hi) (sorted, all sharing their first
   * `depth` bits: any of them is the subtree's path), its parent's `side` child, and writes its
   * new hash into the parent's record. `absent`: nothing is stored there (its hash in its parent
   * is empty, or it is below a node built fresh).
   */
  #subtree(
    changes: readonly SmtEntry[],
    lo: number,
    hi: number,
    depth: number,
    side: 0 | 1,
    absent: boolean,
  ): void {
    const path = changes[lo]!.key;
    if (!absent) {
      const tile = this.#tile(path, depth);
      const at = tile.at(slotOf(path, depth));
      if (at === 0) throw missingNode(depth);
      const bytes = tile.bytes;
      if (bytes[at] === INNER) {
        const leftEmpty = isEmptyAt(bytes, at + 1);
        const rightEmpty = isEmptyAt(bytes, at + 33);
        this.#split(changes, lo, hi, depth, side, true, leftEmpty, rightEmpty);
        return;
      }
      // A leaf: it moves down beside the new keys, unless one of them replaces its value.
      const key = bytes.subarray(at + 1, at + 33);
      let replaced = false;
      for (let i = lo; i < hi && !replaced; i++) replaced = bytesEqual(changes[i]!.key, key);
      if (!replaced) {
        const moved = { key: key.slice(), value: bytes.slice(at + 33, at + 65) };
        let p = lo;
        while (p < hi && compareKeys(changes[p]!, moved) < 0) p++;
        const all = [...changes.slice(lo, p), moved, ...changes.slice(p, hi)];
        this.#split(all, 0, all.length, depth, side, false, true, true);
        return;
      }
    }
    if (hi - lo === 1) {
      const only = changes[lo]!;
      const record = this.#scratch.views[depth]!;
      record[0] = LEAF;
      record.set(only.key, 1);
      record.set(only.value, 33);
      this.#put(only.key, depth, side);
      return;
    }
    // Nothing is stored below a leaf or an empty subtree: the inner node is built fresh.
    this.#split(changes, lo, hi, depth, side, false, true, true);
  }

  /**
   * Updates the inner node at `depth` over changes[lo, hi): the node stored there (`stored`,
   * with whether each of its children is empty) or a fresh one.
   */
  #split(
    changes: readonly SmtEntry[],
    lo: number,
    hi: number,
    depth: number,
    side: 0 | 1,
    stored: boolean,
    leftEmpty: boolean,
    rightEmpty: boolean,
  ): void {
    check(depth < 256, "INTERNAL", "two equal keys in the map");
    let mid = lo;
    while (mid < hi && keyBit(changes[mid]!.key, depth) === 0) mid++;
    const path = changes[lo]!.key;
    if (mid > lo) this.#subtree(changes, lo, mid, depth + 1, 0, leftEmpty);
    else this.#unchanged(path, depth, 0, stored);
    if (mid < hi) this.#subtree(changes, mid, hi, depth + 1, 1, rightEmpty);
    else this.#unchanged(path, depth, 1, stored);
    // Both children wrote their hashes into this node's record; a child's own record, at the
    // next depth, is free again once its hash is here.
    this.#scratch.views[depth]![0] = INNER;
    this.#put(path, depth, side);
  }

  /**
   * Writes into the record at `depth` the hash of its `bit` child that no change goes under:
   * the stored node's (read again: the tile's records move as others are inserted), or EMPTY
   * under a fresh one.
   */
  #unchanged(path: Uint8Array, depth: number, bit: 0 | 1, stored: boolean): void {
    const out = this.#scratch.bytes;
    const to = 65 * (depth + 1) + 1 + 32 * bit;
    if (!stored) {
      out.fill(0, to, to + 32);
      return;
    }
    const tile = this.#tile(path, depth);
    const bytes = tile.bytes;
    const from = tile.at(slotOf(path, depth)) + half(bit);
    for (let i = 0; i < 32; i++) out[to + i] = bytes[from + i]!;
  }

  /** The id of the tile holding the node at `depth` on `path`. */
  #idOf(path: Uint8Array, depth: number): string {
    const tier = depth >> 3;
    if (path !== this.#lastPath || tier !== this.#lastTier) {
      this.#lastPath = path;
      this.#lastTier = tier;
      this.#lastId = tileId(path, tier);
    }
    return this.#lastId;
  }

  #tile(path: Uint8Array, depth: number): MapTile {
    const tile = this.#work.get(this.#idOf(path, depth));
    // #load read every stored tile on the changes' paths; a node it did not find is corrupt.
    if (tile === undefined) throw missingTile(depth >> 3);
    return tile;
  }

  /**
   * Stores the record built at `depth` in its tile, and writes its hash into its parent's
   * record (the root's: bytes [1, 33)) as the parent's `side` child.
   */
  #put(path: Uint8Array, depth: number, side: 0 | 1): void {
    const record = this.#scratch.views[depth]!;
    const id = this.#idOf(path, depth);
    let tile = this.#work.get(id);
    if (tile === undefined) {
      tile = new MapTile();
      this.#work.set(id, tile);
    }
    tile.put(slotOf(path, depth), record);
    this.changed.add(id);
    sha256Into(record, this.#scratch.bytes, 65 * depth + 1 + 32 * side);
  }
}
