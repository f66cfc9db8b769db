/**
 * @module
 * The index's store doing its work in the calling thread (index-store.ts): key lists
 * (key-lists.ts) and the map (map-store.ts) over one key-value namespace, with its state
 * ("s": u64be size ‖ map root) written in the same atomic write as the lists and map.
 */
import { bytesEqual, getUint64, putUint64 } from "../core/bytes.js";
import { check, VellumError } from "../core/errors.js";
import type { IndexKey } from "../core/event-keys.js";
import { mapKeyOf, mapValueOf } from "../core/index-answer.js";
import { listLeaf } from "../core/list-run.js";
import { EMPTY_ROOT, hashLeaf } from "../core/rfc6962.js";
import { EMPTY_HASH, type SmtProof } from "../core/smt.js";
import { windowPageIndices } from "../core/window.js";
import type { LevelDatabaseOptions } from "../storage/level.js";
import type { KeyValueStore, WriteOp } from "../storage/types.js";
import { writePuts } from "../storage/write-puts.js";
import type {
  IndexedEntry,
  IndexStore,
  IndexStoreState,
  ListRun,
  RunQuery,
} from "./index-store.js";
import { KeyLists } from "./key-lists.js";
import { MapStore } from "./map-store.js";

/**
 * How the index's own LevelDB database is opened. Without Snappy: nearly all it holds is
 * hashes (map tiles, list nodes), which do not compress, and LevelDB would try every block at
 * every flush and compaction. A 64 MiB memtable (the log's databases use 16): the index
 * rewrites the same tiles revision after revision at random keys, and larger level-0 tables
 * mean fewer compactions that each rewrite most of level 1. LevelDB's compaction thread was the
 * largest share of the index's CPU outside its own thread; in process (`npm run bench:index --
 * --only revisions --revision-events 800000`), the other threads took 48 instead of 54–56 µs
 * per event. The cost: up to twice 64 MiB of memory while a memtable is being written out,
 * and up to 64 MiB of write-ahead log to replay after a crash (the index is derived data).
 */
export const INDEX_DATABASE_OPTIONS: LevelDatabaseOptions = {
  compression: false,
  writeBufferSize: 64 * 1024 * 1024,
};

/** The index's state key: u64be log size ‖ map root. */
export const STATE_KEY = Uint8Array.of(0x73); // "s"

/**
 * The layout of the store's records, under "l": 3 since a list's partial chunk is kept in its
 * key's record (key-lists.ts), 2 since the map is kept in tiles (map-store.ts); a store without
 * it keeps one record per map node. The store is derived data, so one in another layout is
 * dropped and rebuilt from the log, not converted.
 */
const LAYOUT_KEY = Uint8Array.of(0x6c); // "l"
const LAYOUT = 3;

/**
 * The state: u64be size ‖ map root, then — when the write was not synced — the boot id of the
 * kernel it was written under (ASCII). A state without one was written durably.
 */
function encodeState(size: number, mapRoot: Uint8Array, bootId?: string): Uint8Array {
  const out = new Uint8Array(40 + (bootId?.length ?? 0));
  putUint64(out, 0, size);
  out.set(mapRoot, 8);
  for (let i = 0; i < (bootId?.length ?? 0); i++) out[40 + i] = bootId!.charCodeAt(i);
  return out;
}

export interface LocalIndexStoreOptions {
  /**
   * The running kernel's boot id, when the key-value store's writes are not synced (LevelDB
   * opened with `sync: false`, as the index's process opens it on Linux). Each revision's state
   * then carries it; close() writes the state durably without it. A store whose state carries
   * another boot id was left unsynced by a machine that has restarted since: its last writes
   * may be lost, or lost out of order (the page cache writes back in no promised order), so it
   * is dropped and rebuilt from the log. Within one boot nothing written is lost (a killed
   * process's writes are in the page cache). Why: an fdatasync of each revision's ~10 MB
   * held up the log's own syncs on the same disk (below the 0.90 target with it, above without;
   * README, "Verifiable index").
   */
  readonly bootId?: string;
}

export class LocalIndexStore implements IndexStore {
  readonly #kv: KeyValueStore;
  readonly #keysOf: (payload: Uint8Array) => readonly IndexKey[];
  readonly #lists: KeyLists;
  readonly #map: MapStore;
  readonly #bootId: string | undefined;
  #size = 0;
  #loaded = false;

  constructor(
    kv: KeyValueStore,
    keysOf: (payload: Uint8Array) => readonly IndexKey[],
    options: LocalIndexStoreOptions = {},
  ) {
    this.#kv = kv;
    this.#keysOf = keysOf;
    this.#bootId = options.bootId;
    this.#lists = new KeyLists(kv);
    this.#map = new MapStore(kv, EMPTY_HASH);
  }

  async load(): Promise<IndexStoreState> {
    let [bytes, layout] = await this.#kv.getMany([STATE_KEY, LAYOUT_KEY]);
    this.#lists.reset();
    let dropped: string | undefined;
    if (bytes !== undefined && (layout?.length !== 1 || layout[0] !== LAYOUT)) {
      dropped = `the index store is in layout ${layout?.[0] ?? 1}, this version keeps layout ${LAYOUT}: dropped, to be rebuilt from the log`;
      await this.#clear();
      bytes = undefined;
    }
    if (bytes !== undefined && bytes.length > 40) {
      const written = String.fromCharCode(...bytes.subarray(40));
      if (written !== this.#bootId) {
        dropped = `the machine restarted since the index store's last writes, which were not synced (boot ${written}, now ${this.#bootId ?? "unknown"}): dropped, to be rebuilt from the log`;
        await this.#clear();
        bytes = undefined;
      }
    }
    if (bytes === undefined) {
      this.#size = 0;
      this.#map.reset(EMPTY_HASH);
    } else {
      check(bytes.length >= 40, "STATE_MISMATCH", "the index store's state is corrupt");
      this.#size = getUint64(bytes, 0, "index size");
      this.#map.reset(bytes.slice(8, 40));
    }
    this.#loaded = true;
    return { size: this.#size, mapRoot: this.#map.root, ...(dropped && { dropped }) };
  }

  /**
   * Deletes every record of the store, a chunk per write, the state last: a crash part way
   * leaves the state without its layout, so the next open drops the rest.
   */
  async #clear(): Promise<void> {
    for (;;) {
      const held = await this.#kv.range({
        gte: new Uint8Array(0),
        lt: Uint8Array.of(0xff),
        limit: 10_001,
      });
      const others = held.filter(([key]) => !bytesEqual(key, STATE_KEY)).slice(0, 10_000);
      if (others.length === 0) break;
      await this.#kv.write(others.map(([key]) => ({ type: "del", key })));
    }
    // Durable, with every delete before it: a store whose writes are not synced must not come
    // back from a crash without its state but with some of its records.
    const last: WriteOp[] = [{ type: "del", key: STATE_KEY }];
    await (this.#kv.writeDurable?.(last) ?? this.#kv.write(last));
  }

  async apply(entries: readonly IndexedEntry[]): Promise<Uint8Array> {
    type Group = { key: IndexKey; mapKey: Uint8Array; indices: number[]; leaves: Uint8Array[] };
    // By kind, then value: no string made per key of every entry to look its group up.
    const byKind = new Map<string, Map<string, Group>>();
    const groups: Group[] = [];
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.index !== this.#size + k) {
        throw new VellumError(
          "INTERNAL",
          `the index takes entry ${this.#size + k} next, not ${e.index}`,
        );
      }
      const keys = this.#keysOf(e.payload);
      if (keys.length === 0) continue;
      // The entry's leaf in every list it joins: hashed once.
      const leaf = hashLeaf(listLeaf(e.index));
      for (const key of keys) {
        let ofKind = byKind.get(key.kind);
        if (ofKind === undefined) {
          ofKind = new Map();
          byKind.set(key.kind, ofKind);
        }
        let group = ofKind.get(key.value);
        if (group === undefined) {
          group = { key, mapKey: mapKeyOf(key), indices: [], leaves: [] };
          ofKind.set(key.value, group);
          groups.push(group);
        }
        if (group.indices[group.indices.length - 1] !== e.index) {
          group.indices.push(e.index);
          group.leaves.push(leaf);
        }
      }
    }
    const target = this.#size + entries.length;
    try {
      const loaded = await this.#lists.loadMany(groups.map((g) => g.mapKey));
      // Values are set once the lists are appended; prepare() looks at the keys only.
      const changes = groups.map((g): { key: Uint8Array; value: Uint8Array } => ({
        key: g.mapKey,
        value: EMPTY_HASH,
      }));
      const prepared = await this.#map.prepare(changes);
      let mapRoot = this.#map.root;
      // Everything from here on is computed as it is written: the revision's writes go into the
      // store's batch one by one rather than living, all of them, until the write.
      await writePuts(this.#kv, (put) => {
        for (let i = 0; i < groups.length; i++) {
          const g = groups[i]!;
          const list = this.#lists.appendTo(loaded[i], g.mapKey, g.key, g.indices, g.leaves, put);
          changes[i]!.value = mapValueOf(list.count, list.root);
        }
        mapRoot = this.#map.commit(prepared, put);
        put(STATE_KEY, encodeState(target, mapRoot, this.#bootId));
        put(LAYOUT_KEY, Uint8Array.of(LAYOUT));
      });
      this.#size = target;
      return mapRoot;
    } catch (e) {
      // The loaded lists and cached nodes may be ahead of the store: the store is the truth.
      await this.load().catch(() => undefined);
      throw e;
    }
  }

  async counts(keys: readonly IndexKey[]): Promise<number[]> {
    const lists = await this.#lists.loadMany(keys.map(mapKeyOf));
    return lists.map((l) => l?.count ?? 0);
  }

  async run(q: RunQuery): Promise<ListRun> {
    const list = await this.#lists.load(mapKeyOf(q.key));
    check(
      q.count <= (list?.count ?? 0),
      "MALFORMED",
      `the list of ${q.key.kind} "${q.key.value}" holds fewer than ${q.count} entries`,
    );
    if (list === undefined || q.count === 0) {
      if (q.at !== undefined && q.at !== 0) {
        throw new VellumError("MALFORMED", "the cursor is not inside this query's run");
      }
      return {
        listRoot: EMPTY_ROOT,
        start: 0,
        end: 0,
        pageStart: 0,
        pageEnd: 0,
        items: [],
        multiproof: [],
      };
    }
    const count = q.count;
    const start = await this.#lists.positionOf(list, count, q.from);
    const end = await this.#lists.positionOf(list, count, q.to);
    let pageStart: number;
    let pageEnd: number;
    if (q.order === "asc") {
      pageStart = q.at ?? start;
      pageEnd = Math.min(end, pageStart + q.limit);
    } else {
      pageEnd = q.at ?? end;
      pageStart = Math.max(start, pageEnd - q.limit);
    }
    check(
      start <= pageStart && pageStart <= pageEnd && pageEnd <= end,
      "MALFORMED",
      "the cursor is not inside this query's run",
    );
    const positions = windowPageIndices(count, start, end, pageStart, pageEnd);
    const values = await this.#values(list, positions);
    return {
      listRoot: await list.tree.rootAt(count),
      start,
      end,
      pageStart,
      pageEnd,
      items: positions.map((position, k) => ({ position, logIndex: values[k]! })),
      multiproof: positions.length === 0 ? [] : await list.tree.multiproof(positions, count),
    };
  }

  /** The values at increasing positions: the page's run in one read per chunk. */
  async #values(
    list: NonNullable<Awaited<ReturnType<KeyLists["load"]>>>,
    positions: readonly number[],
  ): Promise<number[]> {
    if (positions.length === 0) return [];
    const first = positions[0]!;
    const last = positions[positions.length - 1]!;
    // Boundaries can sit far from the page; read them alone, the page as one range.
    const out: number[] = [];
    let k = 0;
    while (k < positions.length) {
      let j = k;
      while (j + 1 < positions.length && positions[j + 1] === positions[j]! + 1) j++;
      out.push(...(await this.#lists.values(list, positions[k]!, positions[j]! + 1)));
      k = j + 1;
    }
    check(out.length === positions.length && first <= last, "INTERNAL", "list values misread");
    return out;
  }

  prove(key: IndexKey): Promise<SmtProof> {
    return this.#map.prove(mapKeyOf(key));
  }

  /**
   * With unsynced writes (a boot id), writes the state durably, without the boot id, so that
   * the store survives a restart of the machine; nothing else to release (whoever gave the
   * key-value store closes it). A failure leaves the state as it was: rebuilt after a restart.
   */
  async close(): Promise<void> {
    if (this.#bootId === undefined || !this.#loaded) return;
    const ops = [
      { type: "put" as const, key: STATE_KEY, value: encodeState(this.#size, this.#map.root) },
    ];
    try {
      await (this.#kv.writeDurable?.(ops) ?? this.#kv.write(ops));
    } catch {
      // The state keeps its boot id: a restart of the machine drops the store, as it should.
    }
  }
}
