/**
 * @module
 * The embedded log store: the LogStore contract (log-store.ts) over one KeyValueStore namespace,
 * in the key layout of kv-log-layout.ts (spec/storage.md, "Key layout"), and (layout 3, every
 * log created with one) a second namespace, in another database, for the leaves alone. A batch
 * is one atomic KeyValueStore write — a single synced LevelDB batch — followed by one read-back
 * of the tree state it set. In layout 3 its leaves go to the entries store in a synced write of
 * their own, at the same time; the batch's write carries an undo record (batch-undo.ts), and the
 * next batch's write starts only once these leaves are durable, so after a crash at most the last
 * batch can be missing its leaves, and load takes that batch back out.
 */
import { bytesEqual } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";
import { decodeUndo, encodeUndo, UNDO_KEY } from "./batch-undo.js";
import type { EntryBatch } from "./entry-batch.js";
import { EraFilters } from "./era-filters.js";
import {
  CHECKPOINT_RANGE,
  checkpointKey,
  DEDUP_KEY,
  decodeIndex,
  ENTRIES_STORE_LAYOUT,
  encodeIndex,
  entryKey,
  entryRange,
  eraLeafHashKey,
  idempotencyKey,
  idKey,
  LAYOUT_KEY,
  LEAF_HASH_LAYOUT,
  leafHashKey,
  leafHashKeyV1,
  MIGRATION_KEY,
  payloadKey,
  putLeaves,
  putLookups,
  STATE_KEY,
  tileKey,
} from "./kv-log-layout.js";
import type { BatchWrite, DedupRule, LogStore, StoredLog } from "./log-store.js";
import { rollbackStrata, truncateStratum } from "./stratum-bytes.js";
import { decodeState, encodeState } from "./tree-state.js";
import type { KeyValueStore, WriteOp } from "./types.js";
import { writePuts } from "./write-puts.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The rule as stored under "d": its name in ASCII. */
export function encodeDedup(rule: DedupRule): Uint8Array {
  return utf8.encode(rule);
}

export function decodeDedup(bytes: Uint8Array): DedupRule {
  const text = fromUtf8.decode(bytes);
  if (text !== "key" && text !== "payload") {
    throw new VellumError(
      "STATE_MISMATCH",
      `the stored dedup setting "${text.slice(0, 20)}" is unknown`,
    );
  }
  return text;
}

const indexOrUndefined = (v: Uint8Array | undefined) =>
  v === undefined ? undefined : decodeIndex(v);

/** Leaves past the tree's size deleted per write when a log is loaded (see load). */
const STRAY_LEAVES_PER_WRITE = 4096;

export class KvLogStore implements LogStore {
  readonly #kv: KeyValueStore;
  /** Where new logs keep their leaves (layout 3); undefined: beside everything else (layout 2). */
  readonly #entries: KeyValueStore | undefined;
  /** The store's layout, once read (see #storeLayout). */
  #layout: Promise<number> | undefined;
  /** The store the leaves are in, once the layout is known. */
  #leafKv: KeyValueStore | undefined;
  /** Layout 2's filters of finished eras (era-filters.ts). */
  readonly #filters: EraFilters;
  /** The tree size last loaded or committed here (a lookup's guess at the filter groups). */
  #sizeSeen = 0;
  /** Leaves writes started by stageLeaves and not yet settled (load waits for them). */
  readonly #staging = new Set<Promise<boolean>>();
  /** Staged leaves writes that failed: commit then refuses before the batch's own write. */
  readonly #stagesFailed = new WeakSet<Promise<boolean>>();
  /**
   * The tree state ("s") stored before the next batch, as loaded, created or last committed:
   * what a layout-3 batch's undo record puts back (undefined until loaded or created).
   */
  #stateStored: Uint8Array | undefined;

  /**
   * `entries`: a namespace of another database for the leaves of a log created here (layout 3).
   * A log created before keeps its leaves where they are, and a log of layout 3 cannot be opened
   * without it.
   */
  constructor(kv: KeyValueStore, entries?: KeyValueStore) {
    this.#kv = kv;
    this.#entries = entries;
    this.#filters = new EraFilters(kv);
  }

  /** Resolves when no era filter is being written (tests, tools). */
  filtersSettled(): Promise<void> {
    return this.#filters.settled();
  }

  async load(): Promise<StoredLog> {
    // A leaves write staged for a batch that was never committed (its predecessor failed) must
    // land before the stray leaves are deleted below, not after.
    if (this.#staging.size > 0) await Promise.allSettled([...this.#staging]);
    const kv = this.#kv;
    const [stateBytes, dedupBytes] = await kv.getMany([STATE_KEY, DEDUP_KEY]);
    let state = stateBytes === undefined ? undefined : decodeState(stateBytes);
    this.#stateStored = stateBytes;
    const layout = state === undefined ? undefined : await this.#storeLayout();
    let undone: StoredLog["undone"];
    if (state !== undefined && layout === ENTRIES_STORE_LAYOUT && state.size > 0) {
      const last = await this.#entries!.get(entryKey(state.size - 1));
      if (last === undefined) {
        const before = await this.#undoLastBatch(state.size);
        undone = { from: state.size, to: before.size };
        state = before;
      }
    }
    // Finished eras without a stored filter (a restart before it was written) get theirs now.
    if (state !== undefined && layout !== 1) {
      this.#sizeSeen = state.size;
      this.#filters.reached(state.size);
    }
    if (state !== undefined && layout === ENTRIES_STORE_LAYOUT) {
      await this.#deleteStrayLeaves(state.size);
    }
    const [[latest], [anything]] = await Promise.all([
      kv.range({ ...CHECKPOINT_RANGE, reverse: true, limit: 1 }),
      kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff), limit: 1 }),
    ]);
    return {
      state,
      latestCheckpoint: latest === undefined ? undefined : fromUtf8.decode(latest[1]),
      dedup: dedupBytes === undefined ? undefined : decodeDedup(dedupBytes),
      holdsData: anything !== undefined,
      ...(undone !== undefined && { undone }),
    };
  }

  /**
   * Layout 3: the stored tree of `size` is missing its last leaf: its last batch's own write
   * became durable and its leaves write did not (a crash or a failure while both were under way).
   * That batch was never acknowledged; its undo record (batch-undo.ts) takes it back out in one
   * atomic write: the tree state before it, its checkpoint, every lookup key it put and the
   * strata it wrote. Refuses (STATE_MISMATCH) when the record is not that batch's, or when the
   * leaves before it are missing too (which the write order rules out: damaged storage).
   */
  async #undoLastBatch(size: number) {
    const kv = this.#kv;
    const stored = await kv.get(UNDO_KEY);
    const missing = `the stored tree of size ${size} is missing its last leaf`;
    if (stored === undefined) {
      throw new VellumError("STATE_MISMATCH", `${missing}, and no undo record is stored`);
    }
    const undo = decodeUndo(stored);
    const before = decodeState(undo.stateBefore);
    if (undo.sizeAfter !== size || before.size !== undo.start) {
      throw new VellumError(
        "STATE_MISMATCH",
        `${missing}, and the undo record is for a batch from ${before.size} to ${undo.sizeAfter}`,
      );
    }
    if (before.size > 0 && (await this.#entries!.get(entryKey(before.size - 1))) === undefined) {
      throw new VellumError(
        "STATE_MISMATCH",
        `${missing}, and entry ${before.size - 1} before its last batch is missing too`,
      );
    }
    const ops: WriteOp[] = [
      { type: "put", key: STATE_KEY, value: undo.stateBefore },
      { type: "del", key: checkpointKey(size) },
      { type: "del", key: UNDO_KEY },
    ];
    for (let i = 0; i < undo.count; i++) {
      ops.push({ type: "del", key: idKey(undo.ids.subarray(i * 16, i * 16 + 16)) });
      const hash = undo.leafHashes.subarray(i * 32, i * 32 + 32);
      ops.push({ type: "del", key: leafHashKey(hash, undo.start + i, ENTRIES_STORE_LAYOUT) });
    }
    for (const key of undo.hashedKeys) ops.push({ type: "del", key });
    for (const s of rollbackStrata(before.size, size)) {
      const key = tileKey(s.level, s.index);
      if (s.width === 0) {
        ops.push({ type: "del", key });
        continue;
      }
      const bytes = await kv.get(key);
      if (bytes !== undefined)
        ops.push({ type: "put", key, value: truncateStratum(bytes, s.width) });
    }
    await kv.write(ops);
    this.#stateStored = undo.stateBefore;
    return before;
  }

  /**
   * Layout 3: deletes the leaves stored at or past `size`. They are those of a batch whose leaves
   * were written but whose own write was not (a crash or a failure between the two): never part
   * of the tree, never acknowledged, and a later batch of another size would leave some behind.
   */
  async #deleteStrayLeaves(size: number): Promise<void> {
    const leafKv = this.#entries!;
    const end = entryRange(size, Number.MAX_SAFE_INTEGER);
    for (;;) {
      const rows = await leafKv.range({ ...end, limit: STRAY_LEAVES_PER_WRITE });
      if (rows.length === 0) return;
      await leafKv.write(rows.map(([key]) => ({ type: "del" as const, key })));
    }
  }

  async create(dedup: DedupRule, checkpointNote: string): Promise<void> {
    const layout = this.#entries === undefined ? LEAF_HASH_LAYOUT : ENTRIES_STORE_LAYOUT;
    await this.#kv.write([
      { type: "put", key: LAYOUT_KEY, value: Uint8Array.of(layout) },
      { type: "put", key: DEDUP_KEY, value: encodeDedup(dedup) },
      { type: "put", key: STATE_KEY, value: encodeState({ size: 0, compact: [] }) },
      { type: "put", key: checkpointKey(0), value: utf8.encode(checkpointNote) },
    ]);
    this.#layout = Promise.resolve(layout);
    this.#leafKv = this.#entries ?? this.#kv;
    this.#stateStored = encodeState({ size: 0, compact: [] });
  }

  /**
   * The store's layout (kv-log-layout.ts): 3 for logs created with an entries store, 2 for those
   * created without one since era keys exist, 1 (no "l" key) for older ones; each keeps its own
   * unless moved to layout 3 (kv-log-migrate.ts), and one being moved does not open. Read once.
   */
  #storeLayout(): Promise<number> {
    this.#layout ??= this.#kv.getMany([LAYOUT_KEY, MIGRATION_KEY]).then(([v, migrating]) => {
      if (migrating !== undefined) {
        throw new VellumError(
          "STATE_MISMATCH",
          "this log's move to layout 3 (vellum migrate) was cut off before it finished: run `vellum migrate` again to finish it; the log does not open until then",
        );
      }
      if (v === undefined) {
        this.#leafKv = this.#kv;
        return 1;
      }
      const layout = v.length === 1 ? v[0]! : 0;
      if (layout < 1 || layout > ENTRIES_STORE_LAYOUT) {
        throw new VellumError("STATE_MISMATCH", "the store's layout key holds an unknown layout");
      }
      if (layout === ENTRIES_STORE_LAYOUT && this.#entries === undefined) {
        throw new VellumError(
          "STATE_MISMATCH",
          "this log keeps its leaves in an entries store (layout 3), and none was given: open it with its data directory's entries database",
        );
      }
      this.#leafKv = layout === ENTRIES_STORE_LAYOUT ? this.#entries! : this.#kv;
      return layout;
    });
    // A failed read is not remembered: the next call reads again.
    this.#layout.catch(() => {
      this.#layout = undefined;
    });
    return this.#layout;
  }

  async setDedup(rule: DedupRule): Promise<void> {
    await this.#kv.write([{ type: "put", key: DEDUP_KEY, value: encodeDedup(rule) }]);
  }

  async findByPayload(payloadHashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    if (payloadHashes.length === 0) return [];
    return (await this.#kv.getMany(payloadHashes.map(payloadKey))).map(indexOrUndefined);
  }

  async findByKey(keyHashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    if (keyHashes.length === 0) return [];
    return (await this.#kv.getMany(keyHashes.map(idempotencyKey))).map(indexOrUndefined);
  }

  async findById(id: Uint8Array): Promise<number | undefined> {
    return indexOrUndefined(await this.#kv.get(idKey(id)));
  }

  async findByLeafHash(leafHash: Uint8Array): Promise<number | undefined> {
    if ((await this.#storeLayout()) === 1) {
      return indexOrUndefined(await this.#kv.get(leafHashKeyV1(leafHash)));
    }
    // The eras that may hold it: every era but those whose filter block rules it out. The tree
    // state and the blocks are read together, for as many filter groups as the size last seen
    // has (they change every 16.7 million entries), then any more the state shows.
    const guess = EraFilters.groups(this.#sizeSeen);
    const [state, blocks] = await Promise.all([
      this.#kv.get(STATE_KEY),
      this.#filters.blocks(leafHash, 0, guess),
    ]);
    const size = state === undefined ? 0 : decodeState(state).size;
    const groups = EraFilters.groups(size);
    if (groups > guess) blocks.push(...(await this.#filters.blocks(leafHash, guess, groups)));
    const eras = EraFilters.eras(leafHash, size, blocks);
    if (eras.length === 0) return undefined;
    const keys = eras.map((era) => eraLeafHashKey(leafHash, era));
    for (const v of await this.#kv.getMany(keys)) {
      if (v !== undefined) return indexOrUndefined(v);
    }
    return undefined;
  }

  async commit(batch: BatchWrite): Promise<void> {
    const layout = await this.#storeLayout();
    const apart = layout === ENTRIES_STORE_LAYOUT && batch.entries.count > 0;
    if (!apart) {
      // Layouts 1 and 2, and a batch with no new entry: one write.
      this.#committed(batch, layout, await this.#writeOwn(batch, layout, undefined));
      return;
    }
    // Layout 3: the leaves (staged when the batch was prepared, or written now) and the batch's
    // own write at once, each synced; the batch is stored once both are. If the leaves are lost
    // and the own write is not, the undo record in it lets load take the batch back out. The
    // sequencer commits one batch at a time, so the next own write starts only after these
    // leaves are durable: never more than one batch to undo.
    const stateBefore = this.#stateStored;
    if (stateBefore === undefined) {
      throw new VellumError("INTERNAL", "a batch was committed to a log store never loaded");
    }
    // Leaves that already failed: the own write would only have to be undone.
    if (batch.leavesStaged !== undefined && this.#stagesFailed.has(batch.leavesStaged)) {
      await batch.leavesStaged;
    }
    const leaves =
      batch.leavesStaged === undefined
        ? this.#writeLeaves(batch.entries)
        : batch.leavesStaged.then((staged) => {
            if (!staged) return this.#writeLeaves(batch.entries);
          });
    const undo =
      batch.state === undefined
        ? undefined
        : encodeUndo(
            batch.state.size,
            stateBefore,
            batch.entries,
            batch.keyAliases.map((a) => a.keyHash),
          );
    const [wroteLeaves, wroteOwn] = await Promise.allSettled([
      leaves,
      this.#writeOwn(batch, layout, undo),
    ]);
    if (wroteLeaves.status === "rejected") throw wroteLeaves.reason;
    if (wroteOwn.status === "rejected") throw wroteOwn.reason;
    this.#committed(batch, layout, wroteOwn.value);
  }

  /**
   * The batch's own write: three to five puts per entry, in one chained, synced LevelDB batch
   * (MEASUREMENTS.md: the array form was ~8x slower; the driver chains), put one by one (no list
   * of ops); the leaves too unless the layout keeps them apart; then the tree state read back.
   * Returns the tree state it stored, encoded.
   */
  async #writeOwn(
    batch: BatchWrite,
    layout: number,
    undo: Uint8Array | undefined,
  ): Promise<Uint8Array | undefined> {
    const state = batch.state === undefined ? undefined : encodeState(batch.state);
    const apart = layout === ENTRIES_STORE_LAYOUT;
    await writePuts(this.#kv, (put) => {
      if (!apart) putLeaves(batch.entries, put);
      putLookups(batch.entries, layout, put);
      for (const a of batch.keyAliases) put(idempotencyKey(a.keyHash), encodeIndex(a.index));
      for (const s of batch.strata) put(tileKey(s.level, s.index), s.bytes);
      if (state !== undefined) put(STATE_KEY, state);
      if (undo !== undefined) put(UNDO_KEY, undo);
      if (batch.checkpoint !== undefined) {
        put(checkpointKey(batch.checkpoint.size), utf8.encode(batch.checkpoint.note));
      }
    });
    if (state !== undefined) {
      // One cheap read per batch that turns a write the storage acknowledged but did not apply
      // into a failure before anything is signed off or acknowledged.
      const stored = await this.#kv.get(STATE_KEY);
      if (stored === undefined || !bytesEqual(stored, state)) {
        throw new VellumError(
          "STORAGE_FAILURE",
          "storage acknowledged the batch but does not hold it",
        );
      }
    }
    return state;
  }

  /** After a batch is stored: what this store remembers of it. */
  #committed(batch: BatchWrite, layout: number, state: Uint8Array | undefined): void {
    if (state !== undefined && batch.state !== undefined) {
      this.#stateStored = state;
      this.#sizeSeen = batch.state.size;
    }
    if (layout !== 1) {
      // Into the open era's filter; a filled era is written in the background.
      const b = batch.entries;
      this.#filters.committed(b.start, b.count, b.leafHashes);
    }
  }

  /**
   * Layout 3: starts the batch's leaves write to the entries store (synced) and resolves true
   * once it is durable; false, writing nothing, when the layout keeps the leaves in the batch's
   * own write. The sequencer stages a batch as soon as it is prepared, so its leaves are written
   * while the tree is extended and the previous batch's writes finish (measured: +9–14 %
   * sustained, bench:log); commit then runs the batch's own write alongside. A staged batch that
   * is never committed (an earlier one failed) leaves stray leaves past the tree's size, which
   * load deletes once every stage has settled.
   */
  stageLeaves(entries: EntryBatch): Promise<boolean> {
    const staging = (async () => {
      const layout = await this.#storeLayout();
      if (layout !== ENTRIES_STORE_LAYOUT || entries.count === 0) return false;
      await this.#writeLeaves(entries);
      return true;
    })();
    this.#staging.add(staging);
    const settled = () => void this.#staging.delete(staging);
    staging.then(settled, () => {
      this.#stagesFailed.add(staging);
      settled();
    });
    return staging;
  }

  /**
   * Layout 3: the batch's leaves in one synced write to the entries store, then its last leaf
   * read back: the write is atomic, so a write the storage acknowledged but did not apply fails
   * here, before the batch's own write could make a tree of leaves that are not stored.
   */
  async #writeLeaves(entries: EntryBatch): Promise<void> {
    const leafKv = this.#entries!;
    await writePuts(leafKv, (put) => putLeaves(entries, put));
    const last = entries.count - 1;
    const stored = await leafKv.get(entryKey(entries.start + last));
    if (stored === undefined || !bytesEqual(stored, entries.leaf(last))) {
      throw new VellumError(
        "STORAGE_FAILURE",
        "storage acknowledged the batch's leaves but does not hold them",
      );
    }
  }

  /** The store the leaves are in, once the layout has been read (set by #storeLayout). */
  async #leafStore(): Promise<KeyValueStore> {
    await this.#storeLayout();
    return this.#leafKv!;
  }

  async leaves(indices: readonly number[]): Promise<(Uint8Array | undefined)[]> {
    const kv = this.#leafKv ?? (await this.#leafStore());
    if (indices.length === 1) return [await kv.get(entryKey(indices[0]!))];
    return kv.getMany(indices.map(entryKey));
  }

  async leafRange(start: number, end: number): Promise<[number, Uint8Array][]> {
    const kv = this.#leafKv ?? (await this.#leafStore());
    const rows = await kv.range(entryRange(start, end));
    const out: [number, Uint8Array][] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [key, leaf] = rows[i]!;
      out[i] = [decodeIndex(key.subarray(1)), leaf];
    }
    return out;
  }

  stratum(level: number, index: number): Promise<Uint8Array | undefined> {
    return this.#kv.get(tileKey(level, index));
  }

  async checkpoint(size: number): Promise<string | undefined> {
    const note = await this.#kv.get(checkpointKey(size));
    return note === undefined ? undefined : fromUtf8.decode(note);
  }

  async recentCheckpoints(limit: number): Promise<string[]> {
    const rows = await this.#kv.range({ ...CHECKPOINT_RANGE, reverse: true, limit });
    return rows.map(([, v]) => fromUtf8.decode(v));
  }

  async putCheckpoint(size: number, note: string, expected?: string): Promise<boolean> {
    // One process writes a KvLogStore (the data directory's lock), and the log serialises its
    // writes: reading and then writing is a compare-and-swap here.
    if (expected !== undefined && (await this.checkpoint(size)) !== expected) return false;
    await this.#kv.write([{ type: "put", key: checkpointKey(size), value: utf8.encode(note) }]);
    return true;
  }

  /** Reopens both databases: the log calls it after a failed write in either, then reloads. */
  async recover(): Promise<void> {
    await this.#kv.recover();
    await this.#entries?.recover();
  }
}
