/**
 * @module
 * The key layout of one log inside its KeyValueStore namespace (spec/storage.md). One byte of tag,
 * then fixed-width big-endian fields, so LevelDB's bytewise order is numeric order and a range
 * scan over entries or checkpoints is one iterator.
 *
 *   "s"                        → tree state (CBOR: size, compact range hashes)
 *   "d"                        → the dedup rule, "key" or "payload" (dedup.ts; absent: "payload")
 *   "e" u64 index              → leaf bytes (src/core/entry.ts)
 *   "t" u8 level u64 index     → stored tile: all 8 levels of a tile's stratum (strata.ts)
 *   "l"                        → the store's layout: 2 or 3 (absent: 1, logs made before layouts)
 *   "m"                        → a migration to layout 3 is under way (kv-log-migrate.ts): the
 *                              log does not open until it is finished
 *   "i" id(16)                 → u64 index          (lookup by entry id)
 *   "h" u32 era leafHash(32)   → u64 index          (lookup by leaf hash; layout 2, see below)
 *   "h" leafHash(32)           → u64 index          (the same in layout 1)
 *   "f"                        → u32: how many eras (from era 0) have their filter stored
 *   "f" u32 group u32 block u32 era → 64 bytes: one block of that era's leaf-hash filter
 *                              (era-filter.ts; the group is era ÷ 64)
 *   "p" sha256(payload)(32)    → u64 index          (dedup by payload; only under that rule)
 *   "k" sha256(key)(32)        → u64 index          (dedup by idempotency key; always)
 *   "c" u64 size               → signed checkpoint note text (UTF-8), latest signature per size
 */
import { getUint64, putUint64 } from "../core/bytes.js";
import type { EntryBatch } from "./entry-batch.js";
import type { Put } from "./types.js";

export const STATE_KEY = Uint8Array.of(0x73); // "s"
export const DEDUP_KEY = Uint8Array.of(0x64); // "d"
export const LAYOUT_KEY = Uint8Array.of(0x6c); // "l"
export const FILTERED_KEY = Uint8Array.of(0x66); // "f"
export const MIGRATION_KEY = Uint8Array.of(0x6d); // "m"

/** The "f" key's value: u32 big-endian, how many eras (from era 0) have their filter stored. */
export function encodeFilteredEras(eras: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, eras);
  return out;
}

/** The "f" key's count; undefined when it is not 4 bytes (damaged). */
export const decodeFilteredEras = (v: Uint8Array): number | undefined =>
  v.length === 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0) : undefined;

/**
 * The leaf-hash index is the one lookup whose keys arrive in random order (ids are UUIDv7, in
 * index order; entries, tiles and checkpoints are keyed by index). Random keys spread over one
 * key range make LevelDB's compaction rewrite that whole range again and again as it grows: over
 * 10 million entries the engine's rate fell by half, and without this index it stayed flat.
 * Layout 2 puts each entry's key under its era (its index ÷ 2^18, 1,024 entry bundles): the
 * random keys of one era share one small range, an era once past is compacted down and not
 * rewritten again, and the work per entry stays that of a young log. (Eras of 2^22 entries were
 * still too wide: about 200 MB of keys each, and the 10M run sagged by a quarter.) A lookup must
 * then find the era: each finished era has a filter of its leaf hashes (era-filter.ts), stored
 * block by block under "f" group block era, so the one block a leaf hash falls in, for every era
 * of a group of 64, is one short range read; only the eras they name (and the open era) are
 * asked. Asking all 382 eras of a 100-million-entry log took 60 ms at p50: their files' own
 * Bloom filters are not all in memory.
 */
export const LEAF_HASH_LAYOUT = 2;
/**
 * Layout 3 is layout 2 with the leaves ("e" keys) in a second key-value store of their own, the
 * log's entries store (a second LevelDB database), instead of beside the lookup keys. The leaves
 * are about three quarters of what a log writes, and their keys only ever grow; in one LSM tree
 * with the random lookup keys, every compaction that merged the lookups rewrote the leaves too
 * (LevelDB rewrote 924 B per entry at 10M entries against 266 B stored). Alone, their tables
 * never overlap and move down the levels without being rewritten. A batch's leaves and its own
 * write run at the same time (spec/storage.md, "Order"): a crash can leave leaves past the tree's
 * size, which no reader asks for and the next load deletes, or the last batch's own write without
 * its leaves, which the next load takes back out with the batch's undo record (batch-undo.ts).
 */
export const ENTRIES_STORE_LAYOUT = 3;
export const ERA_BITS = 18;
export const ERA_SIZE = 2 ** ERA_BITS;

/** The era of the entry at `index` (layout 2's leaf-hash keys). */
export const eraOf = (index: number) => Math.floor(index / ERA_SIZE);

const TAG = {
  entry: 0x65,
  tile: 0x74,
  id: 0x69,
  leaf: 0x68,
  filter: 0x66,
  payload: 0x70,
  idem: 0x6b,
  cp: 0x63,
};

function tagged(tag: number, body: Uint8Array): Uint8Array {
  const key = new Uint8Array(1 + body.length);
  key[0] = tag;
  key.set(body, 1);
  return key;
}

function u64Key(tag: number, value: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = tag;
  putUint64(key, 1, value);
  return key;
}

/** The key right after `key` in bytewise order (`key` ‖ 0): where a range read goes on from. */
export function keyAfter(key: Uint8Array): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

export const entryKey = (index: number) => u64Key(TAG.entry, index);
export const checkpointKey = (size: number) => u64Key(TAG.cp, size);
export const idKey = (id: Uint8Array) => tagged(TAG.id, id);
/** Layout 1's leaf-hash key: "h" ‖ leaf hash. */
export const leafHashKeyV1 = (leafHash: Uint8Array) => tagged(TAG.leaf, leafHash);

/** The leaf-hash key of the entry at `index` in `layout` (1 or 2). */
export function leafHashKey(leafHash: Uint8Array, index: number, layout: number): Uint8Array {
  return layout === 1 ? leafHashKeyV1(leafHash) : eraLeafHashKey(leafHash, eraOf(index));
}

/** Layout 2's leaf-hash key: "h" ‖ u32 era ‖ leaf hash. */
export function eraLeafHashKey(leafHash: Uint8Array, era: number): Uint8Array {
  const key = new Uint8Array(5 + leafHash.length);
  key[0] = TAG.leaf;
  new DataView(key.buffer).setUint32(1, era);
  key.set(leafHash, 5);
  return key;
}
/** Bounds of layout 2's leaf-hash keys of one era. */
export function eraLeafHashRange(era: number): { gte: Uint8Array; lt: Uint8Array } {
  const gte = new Uint8Array(5);
  const lt = new Uint8Array(5);
  gte[0] = lt[0] = TAG.leaf;
  new DataView(gte.buffer).setUint32(1, era);
  new DataView(lt.buffer).setUint32(1, era + 1);
  return { gte, lt };
}

/**
 * Eras per group of filter keys (2^6). Inside a group the keys are block-major, so the blocks of
 * one leaf hash in the group's eras adjoin (one short range read each); the group bounds how far
 * an era's filter write spreads: over its group's 38 MB, not over every filter ever written,
 * which LevelDB would compact again with each era, as it did the unbounded leaf-hash keys.
 */
export const FILTER_GROUP_BITS = 6;

/** The number of filter groups that eras below `eras` fall in. */
export const filterGroups = (eras: number) =>
  eras <= 0 ? 0 : ((eras - 1) >>> FILTER_GROUP_BITS) + 1;

function groupKey(group: number, block: number, era: number): Uint8Array {
  const key = new Uint8Array(13);
  key[0] = TAG.filter;
  const view = new DataView(key.buffer);
  view.setUint32(1, group);
  view.setUint32(5, block);
  view.setUint32(9, era);
  return key;
}

/** One block of an era's leaf-hash filter: "f" ‖ u32 group ‖ u32 block ‖ u32 era. */
export const filterKey = (block: number, era: number): Uint8Array =>
  groupKey(era >>> FILTER_GROUP_BITS, block, era);

/** Bounds of block `block` of every era of filter group `group`. */
export function filterBlockRange(
  group: number,
  block: number,
): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: groupKey(group, block, 0), lt: groupKey(group, block + 1, 0) };
}

/** The era a filter key is for; undefined for a key of another length (not a block). */
export const filterKeyEra = (key: Uint8Array): number | undefined =>
  key.length === 13
    ? new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(9)
    : undefined;

export const payloadKey = (payloadHash: Uint8Array) => tagged(TAG.payload, payloadHash);
export const idempotencyKey = (keyHash: Uint8Array) => tagged(TAG.idem, keyHash);

export function tileKey(level: number, index: number): Uint8Array {
  const key = new Uint8Array(10);
  key[0] = TAG.tile;
  key[1] = level;
  putUint64(key, 2, index);
  return key;
}

/** Bounds of every checkpoint key, for "latest checkpoint" (reverse scan, limit 1). */
export const CHECKPOINT_RANGE = { gte: Uint8Array.of(TAG.cp), lt: Uint8Array.of(TAG.cp + 1) };

/** Bounds of the entry keys for indices [start, end). */
export function entryRange(start: number, end: number): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: entryKey(start), lt: entryKey(end) };
}

/** The index stored under a lookup key, or under an entry/checkpoint key's suffix. */
export const encodeIndex = (index: number): Uint8Array => {
  const out = new Uint8Array(8);
  putUint64(out, 0, index);
  return out;
};
export const decodeIndex = (bytes: Uint8Array): number => getUint64(bytes, 0, "stored index");

/** Puts every leaf of a batch: "e" index → leaf (the key built in one buffer, `put` copies it). */
export function putLeaves(b: EntryBatch, put: Put): void {
  const entry = new Uint8Array(9);
  entry[0] = TAG.entry;
  for (let i = 0; i < b.count; i++) {
    putUint64(entry, 1, b.start + i);
    put(entry, b.leaf(i));
  }
}

/**
 * Puts every entry's lookup keys: "i" id → index, "h" leaf hash → index, and "p" / "k" → index
 * when the entry has a payload hash or a key hash (the leaves themselves: putLeaves, into the
 * store the layout keeps them in). The keys and the index are built in buffers reused from entry
 * to entry (`put` copies them): a batch of thousands of entries allocates none per entry.
 */
export function putLookups(b: EntryBatch, layout: number, put: Put): void {
  const id = new Uint8Array(17);
  id[0] = TAG.id;
  const hashAt = layout === 1 ? 1 : 5;
  const leaf = new Uint8Array(hashAt + 32);
  leaf[0] = TAG.leaf;
  const eraView = new DataView(leaf.buffer);
  const hashed = new Uint8Array(33);
  const at = new Uint8Array(8);
  const { ids, leafHashes } = b;
  for (let i = 0; i < b.count; i++) {
    putUint64(at, 0, b.start + i);
    for (let j = 0; j < 16; j++) id[1 + j] = ids[i * 16 + j]!;
    if (layout !== 1) eraView.setUint32(1, eraOf(b.start + i));
    for (let j = 0; j < 32; j++) leaf[hashAt + j] = leafHashes[i * 32 + j]!;
    put(id, at);
    put(leaf, at);
    const payloadHash = b.payloadHash(i);
    if (payloadHash !== undefined) {
      hashed[0] = TAG.payload;
      hashed.set(payloadHash, 1);
      put(hashed, at);
    }
    const keyHash = b.keyHash(i);
    if (keyHash !== undefined) {
      hashed[0] = TAG.idem;
      hashed.set(keyHash, 1);
      put(hashed, at);
    }
  }
}
