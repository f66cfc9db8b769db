/**
 * @module
 * Moves a log made before layout 3 (kv-log-layout.ts) to it: its leaves into the entries store,
 * and, for a log of layout 1, its leaf-hash keys under their eras. A log keeps its layout for
 * life otherwise, and layouts 1 and 2 sag as they grow (their leaves are rewritten by every
 * compaction of the random lookup keys beside them); this is how an existing log gets the flat
 * rate of a new one.
 *
 * Offline: nothing else may have the log open (the CLI holds the databases' locks). Crash-safe:
 * the first write puts a marker ("m") and the last one, which sets the layout, removes it; while
 * it is there the log refuses to open (KvLogStore, fsck), so nothing reads or appends to a log
 * half-way between two layouts. Every step between is a synced write that can be run again:
 *   1. leaves, a chunk at a time: written to the entries store, then deleted from the log's own
 *      store (a crash between the two leaves a chunk in both, copied again, same bytes);
 *   2. layout 1 only: each chunk of old leaf-hash keys replaced by era keys in one write;
 *   3. checked: no leaf left beside the tree, the tree's last leaf in the entries store;
 *   4. one write: layout 3, marker gone; then the leaves' old range compacted (the space back).
 * Running it again after a crash goes on from what is left; on a log of layout 3 it does nothing.
 * The era filters a layout-1 log lacks are written as the store loads (era-filters.ts).
 */
import { VellumError } from "../core/errors.js";
import {
  decodeIndex,
  ENTRIES_STORE_LAYOUT,
  entryKey,
  entryRange,
  eraLeafHashKey,
  eraOf,
  keyAfter,
  LAYOUT_KEY,
  MIGRATION_KEY,
  STATE_KEY,
} from "./kv-log-layout.js";
import { KvLogStore } from "./kv-log-store.js";
import { decodeState } from "./tree-state.js";
import type { KeyValueStore, WriteOp } from "./types.js";

export interface MigrationProgress {
  readonly phase: "leaves" | "leaf-hashes";
  /** Keys moved or rewritten so far in this phase (this run). */
  readonly done: number;
  /** The log's tree size: how many there are in all. */
  readonly total: number;
}

export interface MigrationOptions {
  /** Keys per write (default 4,096). */
  readonly chunk?: number;
  /** Called after each write, for a progress line. */
  readonly onProgress?: (progress: MigrationProgress) => void;
}

export interface MigrationReport {
  /** The layout the log had (3: there was nothing to do). */
  readonly from: number;
  /** The log's tree size. */
  readonly size: number;
  /** Leaves this run moved to the entries store. */
  readonly leavesMoved: number;
  /** Layout-1 leaf-hash keys this run rewrote under their eras. */
  readonly leafHashesRekeyed: number;
  /** Whether this run went on from a migration that had been cut off. */
  readonly resumed: boolean;
}

/** Layout 1's leaf-hash keys: "h" ‖ leaf hash (33 bytes); layout 2's have an era (37). */
const V1_LEAF_HASH_KEY_BYTES = 33;
const LEAF_HASH_TAG = 0x68;

/**
 * Moves the log in `kv` to layout 3, its leaves to `entries` (the same log's namespace in the
 * entries database). Resolves to what it did, or undefined when `kv` holds no log (no tree
 * state). Rejects with STATE_MISMATCH for a layout it does not know or a check that fails, and
 * with what the store throws for a failed write (run it again).
 */
export async function migrateToEntriesStore(
  kv: KeyValueStore,
  entries: KeyValueStore,
  options: MigrationOptions = {},
): Promise<MigrationReport | undefined> {
  const chunk = options.chunk ?? 4096;
  const [stateBytes, layoutBytes, marker] = await kv.getMany([
    STATE_KEY,
    LAYOUT_KEY,
    MIGRATION_KEY,
  ]);
  if (stateBytes === undefined) return undefined;
  const size = decodeState(stateBytes).size;
  const from = layoutBytes === undefined ? 1 : layoutBytes.length === 1 ? layoutBytes[0]! : 0;
  if (from < 1 || from > ENTRIES_STORE_LAYOUT) {
    throw new VellumError("STATE_MISMATCH", "the store's layout key holds an unknown layout");
  }
  const resumed = marker !== undefined;
  if (from === ENTRIES_STORE_LAYOUT && !resumed) {
    return { from, size, leavesMoved: 0, leafHashesRekeyed: 0, resumed };
  }
  if (!resumed) await kv.write([{ type: "put", key: MIGRATION_KEY, value: Uint8Array.of(3) }]);

  const leavesMoved = await moveLeaves(kv, entries, chunk, (done) =>
    options.onProgress?.({ phase: "leaves", done, total: size }),
  );
  const leafHashesRekeyed =
    from === 1
      ? await rekeyLeafHashes(kv, chunk, (done) =>
          options.onProgress?.({ phase: "leaf-hashes", done, total: size }),
        )
      : 0;
  await checkMoved(kv, entries, size);
  await kv.write([
    { type: "put", key: LAYOUT_KEY, value: Uint8Array.of(ENTRIES_STORE_LAYOUT) },
    { type: "del", key: MIGRATION_KEY },
  ]);
  // The leaves were three quarters of what the store held: their space comes back now (a
  // range of deletions only), not whenever compaction would have reached it.
  await kv.compact?.(entryRange(0, Number.MAX_SAFE_INTEGER));
  // Loaded once as layout 3: the era filters a layout-1 log lacks are written now, not at the
  // server's first start.
  const store = new KvLogStore(kv, entries);
  await store.load();
  await store.filtersSettled();
  return { from, size, leavesMoved, leafHashesRekeyed, resumed };
}

/** Step 1: every leaf beside the tree, a chunk at a time, to the entries store. */
async function moveLeaves(
  kv: KeyValueStore,
  entries: KeyValueStore,
  chunk: number,
  progress: (done: number) => void,
): Promise<number> {
  const { lt } = entryRange(0, Number.MAX_SAFE_INTEGER);
  let gte = entryRange(0, Number.MAX_SAFE_INTEGER).gte;
  let moved = 0;
  for (;;) {
    // From past the last chunk, not from the first key again: LevelDB would step over every
    // deleted key (a tombstone until compacted) each time, quadratic in the log's size.
    const rows = await kv.range({ gte, lt, limit: chunk });
    if (rows.length === 0) return moved;
    // Durable in the entries store before they leave the log's own store.
    await entries.write(rows.map(([key, value]): WriteOp => ({ type: "put", key, value })));
    await kv.write(rows.map(([key]): WriteOp => ({ type: "del", key })));
    moved += rows.length;
    progress(moved);
    gte = keyAfter(rows[rows.length - 1]![0]);
  }
}

/** Step 2 (layout 1): each old leaf-hash key replaced by its era key, in the same write. */
async function rekeyLeafHashes(
  kv: KeyValueStore,
  chunk: number,
  progress: (done: number) => void,
): Promise<number> {
  const lt = Uint8Array.of(LEAF_HASH_TAG + 1);
  let gte = Uint8Array.of(LEAF_HASH_TAG);
  let rekeyed = 0;
  for (;;) {
    // Era keys (written here or before a crash) sort among the old ones: skipped by length.
    const rows = await kv.range({ gte, lt, limit: chunk });
    if (rows.length === 0) return rekeyed;
    const ops: WriteOp[] = [];
    for (const [key, value] of rows) {
      if (key.length !== V1_LEAF_HASH_KEY_BYTES) continue;
      const era = eraOf(decodeIndex(value));
      ops.push({ type: "put", key: eraLeafHashKey(key.subarray(1), era), value });
      ops.push({ type: "del", key });
    }
    if (ops.length > 0) {
      await kv.write(ops);
      rekeyed += ops.length / 2;
      progress(rekeyed);
    }
    gte = keyAfter(rows[rows.length - 1]![0]);
  }
}

/**
 * Step 3: what the layout switch relies on, checked before it is made. (No old leaf-hash key is
 * left once step 2 ran a whole pass over them: nothing else writes meanwhile.)
 */
async function checkMoved(kv: KeyValueStore, entries: KeyValueStore, size: number) {
  const [leftover] = await kv.range({ ...entryRange(0, Number.MAX_SAFE_INTEGER), limit: 1 });
  const last = size === 0 ? undefined : await entries.get(entryKey(size - 1));
  const wrong =
    leftover !== undefined
      ? "a leaf is still stored beside the tree"
      : size > 0 && last === undefined
        ? `entry ${size - 1}, the tree's last, is not in the entries store`
        : undefined;
  if (wrong !== undefined) {
    throw new VellumError(
      "STATE_MISMATCH",
      `the move to layout 3 did not complete: ${wrong} (run it again; if this stays, run vellum fsck)`,
    );
  }
}
