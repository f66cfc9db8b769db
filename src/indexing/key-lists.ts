/**
 * @module
 * Every index key's list (src/core/list-run.ts) kept in a key-value store: the increasing log
 * indices of the entries that have the key, and the RFC 6962 tree over them (leaf i is
 * u64be(list[i])), stored as strata like the log's own tree (src/log/strata.ts) so a run proof
 * for any list size the index ever committed is a few reads.
 *
 * Layout, per key (mapKey = the key's 32-byte hash, src/core/index-answer.ts):
 *   "k" ‖ mapKey                        the key: u8 kind, u64be count, u8 n, n compact-range
 *                                       hashes, the values of the last, partial chunk (count
 *                                       mod 256 of them, u64be each), then the key's value (UTF-8)
 *   "t" ‖ mapKey ‖ u8 level ‖ u64be i   the list tree's stratum (level, i); at level 0 only full
 *                                       ones (the partial one is the last chunk's values)
 *   "v" ‖ mapKey ‖ u64be chunk          a full chunk: list values [256·chunk, 256·chunk + 256)
 *
 * The partial chunk lives in the record because both change together at every append: one
 * record to write per list a revision touches and one to read per list it loads, not two
 * (most keys are new and hold one entry: a record and nothing else).
 *
 * Not safe for concurrent use: the index engine (engine.ts) serialises updates and reads.
 */
import { getUint64, putUint64, utf8Decode, utf8Encode } from "../core/bytes.js";
import { CompactRange } from "../core/compact.js";
import { check, VellumError } from "../core/errors.js";
import { type IndexKey, KEY_KINDS } from "../core/event-keys.js";
import { listLeaf } from "../core/list-run.js";
import { LruCache } from "../core/lru.js";
import { hashLeaf } from "../core/rfc6962.js";
import { Tree } from "../log/tree.js";
import type { KeyValueStore, Put, WriteOp } from "../storage/types.js";

const CHUNK = 256;

/**
 * Most lists are short: strata that grow, and few kept decoded per list. A list's partial
 * level-0 tile is never stored: its leaves are the hashes of the values in the list's last
 * chunk (a chunk is one tile wide), which are stored anyway; rewriting that tile at every
 * revision was most of what the index wrote.
 */
const TREE_OPTIONS = { cachedTiles: 8, smallStrata: true, leafEdgeKept: true } as const;

function keyOf(tag: string, mapKey: Uint8Array, tail: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(1 + 32 + tail.length);
  out[0] = tag.charCodeAt(0);
  out.set(mapKey, 1);
  out.set(tail, 33);
  return out;
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  putUint64(out, 0, n);
  return out;
}

function stratumKey(mapKey: Uint8Array, level: number, index: number): Uint8Array {
  const tail = new Uint8Array(9);
  tail[0] = level;
  putUint64(tail, 1, index);
  return keyOf("t", mapKey, tail);
}

/**
 * Keys for puts, written into buffers reused from put to put (a Put copies its key before it
 * returns): a revision puts a few keys per entry, and a new array for each, with the pieces
 * it was assembled from, was a large part of what the index allocated.
 */
const putKeys = {
  k: keyOf("k", new Uint8Array(32)),
  v: keyOf("v", new Uint8Array(32), new Uint8Array(8)),
  t: keyOf("t", new Uint8Array(32), new Uint8Array(9)),
};

/** "k" ‖ mapKey, in the reused buffer. */
function recordPutKey(mapKey: Uint8Array): Uint8Array {
  putKeys.k.set(mapKey, 1);
  return putKeys.k;
}

/** "v" ‖ mapKey ‖ u64be chunk, in the reused buffer. */
function chunkPutKey(mapKey: Uint8Array, chunk: number): Uint8Array {
  putKeys.v.set(mapKey, 1);
  putUint64(putKeys.v, 33, chunk);
  return putKeys.v;
}

/** "t" ‖ mapKey ‖ u8 level ‖ u64be index, in the reused buffer. */
function stratumPutKey(mapKey: Uint8Array, level: number, index: number): Uint8Array {
  putKeys.t.set(mapKey, 1);
  putKeys.t[33] = level;
  putUint64(putKeys.t, 34, index);
  return putKeys.t;
}

/** One key's list as loaded: its tree and the values of its last, partial chunk. */
export class KeyList {
  readonly mapKey: Uint8Array;
  readonly key: IndexKey;
  readonly tree: Tree;
  /** Values of the chunk being filled (list positions [count − tail.length, count)). */
  readonly tail: number[];

  constructor(mapKey: Uint8Array, key: IndexKey, tree: Tree, tail: number[]) {
    this.mapKey = mapKey;
    this.key = key;
    this.tree = tree;
    this.tail = tail;
  }

  get count(): number {
    return this.tree.size;
  }

  get last(): number | undefined {
    return this.tail.length > 0 ? this.tail[this.tail.length - 1] : undefined;
  }
}

/**
 * A key's "k" record: kind, count, the list tree's compact range, the partial chunk's values
 * (count mod CHUNK of them), the key's value.
 */
function encodeRecord(
  key: IndexKey,
  count: number,
  compact: readonly Uint8Array[],
  tail: readonly number[],
): Uint8Array {
  const value = utf8Encode(key.value);
  const at = 10 + 32 * compact.length;
  const out = new Uint8Array(at + 8 * tail.length + value.length);
  out[0] = KEY_KINDS.indexOf(key.kind);
  putUint64(out, 1, count);
  out[9] = compact.length;
  for (let i = 0; i < compact.length; i++) out.set(compact[i]!, 10 + 32 * i);
  for (let i = 0; i < tail.length; i++) putUint64(out, at + 8 * i, tail[i]!);
  out.set(value, at + 8 * tail.length);
  return out;
}

/** A list's count and tree root after an append: what the map commits to. */
export interface AppendedList {
  readonly count: number;
  readonly root: Uint8Array;
}

/** Throws unless `indices` increase and start after `last`. A plain if, not check(): it runs
 * for every index, and check()'s message would be built every time. */
function checkIncreasing(key: IndexKey, indices: readonly number[], last: number): void {
  for (const i of indices) {
    if (i <= last) {
      throw new VellumError("INTERNAL", `index list of ${key.kind} "${key.value}" must increase`);
    }
    last = i;
  }
}

/**
 * A new key's list of 1 to CHUNK − 1 entries, written as appending to an empty Tree would
 * write it (its record, holding its values; no stratum or chunk is full), without building
 * the Tree: most keys are new and stay short (a resource id, a request id), and a Tree and its
 * strata for each cost several times the hashing (measured: 14–19 µs and 2 KiB of heap per
 * new one-entry list before, against the compact range alone now).
 */
function newList(
  mapKey: Uint8Array,
  key: IndexKey,
  indices: readonly number[],
  leafHashes: readonly Uint8Array[],
  put: Put,
): AppendedList {
  checkIncreasing(key, indices, -1);
  const range = CompactRange.empty();
  for (let k = 0; k < indices.length; k++) range.append(leafHashes[k]!);
  put(recordPutKey(mapKey), encodeRecord(key, indices.length, range.hashes(), indices));
  return { count: indices.length, root: range.root() };
}

export class KeyLists {
  readonly #kv: KeyValueStore;
  /** Loaded lists by map key (hot keys, e.g. a common action, are touched by every revision). */
  readonly #cache = new LruCache<string, KeyList>(16_384);

  constructor(kv: KeyValueStore) {
    this.#kv = kv;
  }

  /** Forget loaded lists (after a failed write: the store is the truth). */
  reset(): void {
    this.#cache.clear();
  }

  /** The key's list, or undefined when no entry has the key. */
  async load(mapKey: Uint8Array): Promise<KeyList | undefined> {
    return (await this.loadMany([mapKey]))[0];
  }

  /**
   * The lists of many keys (undefined where no entry has the key): the records in one read,
   * the lists' edges read in parallel (a revision touches thousands of keys; one read after
   * another would leave the index waiting on storage most of the time).
   */
  async loadMany(mapKeys: readonly Uint8Array[]): Promise<(KeyList | undefined)[]> {
    const ids = mapKeys.map((k) => Buffer.from(k).toString("hex"));
    const out: (KeyList | undefined)[] = ids.map((id) => this.#cache.get(id));
    const missing = out.flatMap((l, i) => (l === undefined ? [i] : []));
    if (missing.length === 0) return out;
    const records = await this.#kv.getMany(missing.map((i) => keyOf("k", mapKeys[i]!)));
    await Promise.all(
      missing.map(async (i, k) => {
        const record = records[k];
        if (record === undefined) return;
        const list = await this.#decode(mapKeys[i]!, record);
        this.#cache.set(ids[i]!, list);
        out[i] = list;
      }),
    );
    return out;
  }

  async #decode(mapKey: Uint8Array, record: Uint8Array): Promise<KeyList> {
    const kind = KEY_KINDS[record[0]!];
    check(
      kind !== undefined && record.length >= 10,
      "STATE_MISMATCH",
      "a stored index key is corrupt",
    );
    const count = getUint64(record, 1, "list count");
    const n = record[9]!;
    const compact = Array.from({ length: n }, (_, i) => record.slice(10 + 32 * i, 42 + 32 * i));
    const at = 10 + 32 * n;
    const held = count % CHUNK;
    check(record.length >= at + 8 * held, "STATE_MISMATCH", "a stored index key is corrupt");
    const tail = Array.from({ length: held }, (_, i) =>
      getUint64(record, at + 8 * i, "list value"),
    );
    const value = utf8Decode(record.subarray(at + 8 * held), "index key");
    const tree = await Tree.load(
      (l, i) => this.#kv.get(stratumKey(mapKey, l, i)),
      count,
      compact,
      TREE_OPTIONS,
      tail.map((v) => hashLeaf(listLeaf(v))),
    );
    return new KeyList(mapKey, { kind, value }, tree, tail);
  }

  async #chunk(mapKey: Uint8Array, chunk: number): Promise<number[]> {
    const bytes = await this.#kv.get(keyOf("v", mapKey, u64(chunk)));
    if (bytes === undefined) return [];
    return Array.from({ length: bytes.length / 8 }, (_, i) =>
      getUint64(bytes, 8 * i, "list value"),
    );
  }

  /**
   * Appends increasing log indices to the key's list: `list` as loadMany found it (undefined:
   * no such key yet, created), with the indices' leaf hashes, hashLeaf(listLeaf(i)), given (an
   * entry with several keys joins several lists with the same leaf, hashed once), the writes
   * given to `put` as they are made (a revision streams them into its write rather than
   * holding them all). Returns the list's new count and tree root.
   */
  appendTo(
    list: KeyList | undefined,
    mapKey: Uint8Array,
    key: IndexKey,
    indices: readonly number[],
    leafHashes: readonly Uint8Array[],
    put: Put,
  ): AppendedList {
    check(leafHashes.length === indices.length, "INTERNAL", "a leaf hash per index");
    if (list === undefined && indices.length > 0 && indices.length < CHUNK) {
      return newList(mapKey, key, indices, leafHashes, put);
    }
    if (list === undefined) {
      list = new KeyList(
        mapKey,
        key,
        Tree.empty(async () => undefined, TREE_OPTIONS),
        [],
      );
      // Not cached: most new keys are never seen again (a resource id, a request id), and
      // caching them would push out the lists that come back every revision; a key that does
      // come back is cached when it is next loaded.
    } else {
      check(
        list.key.kind === key.kind && list.key.value === key.value,
        "STATE_MISMATCH",
        `two index keys share one hash: ${key.kind} "${key.value}"`,
      );
    }
    checkIncreasing(key, indices, list.last ?? -1);
    let position = list.count;
    for (const s of list.tree.append(leafHashes)) {
      put(stratumPutKey(mapKey, s.level, s.index), s.bytes);
    }
    for (const i of indices) {
      list.tail.push(i);
      position++;
      if (position % CHUNK === 0) {
        // A full chunk goes to its own record; the partial one is in the key's record.
        const bytes = new Uint8Array(8 * CHUNK);
        for (let k = 0; k < CHUNK; k++) putUint64(bytes, 8 * k, list.tail[k]!);
        put(chunkPutKey(mapKey, position / CHUNK - 1), bytes);
        list.tail.length = 0;
      }
    }
    put(
      recordPutKey(mapKey),
      encodeRecord(list.key, list.count, list.tree.compactHashes(), list.tail),
    );
    return { count: list.count, root: list.tree.root() };
  }

  /** The values at list positions [start, end) (end ≤ count). */
  async values(list: KeyList, start: number, end: number): Promise<number[]> {
    const out: number[] = [];
    for (let chunk = Math.floor(start / CHUNK); chunk * CHUNK < end; chunk++) {
      const values = await this.#valuesOfChunk(list, chunk);
      for (let k = 0; k < values.length; k++) {
        const p = chunk * CHUNK + k;
        if (p >= start && p < end) out.push(values[k]!);
      }
    }
    check(out.length === end - start, "STATE_MISMATCH", `index list of ${list.key.kind} is short`);
    return out;
  }

  async #valuesOfChunk(list: KeyList, chunk: number): Promise<number[]> {
    if (chunk === Math.floor(list.count / CHUNK)) return list.tail;
    return this.#chunk(list.mapKey, chunk);
  }

  /** The first position p < size with list[p] ≥ logIndex, or size. */
  async positionOf(list: KeyList, size: number, logIndex: number): Promise<number> {
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const [v] = await this.values(list, mid, mid + 1);
      if (v! < logIndex) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
