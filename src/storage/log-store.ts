/**
 * @module
 * The storage seam of one log, in the log's own terms: what a backend must keep and how it must
 * keep it. The sequencer, publisher and reader (src/log/) reach storage only through this
 * interface; `KvLogStore` (kv-log-store.ts) is the first implementation, today's LevelDB layout
 * over a KeyValueStore namespace. A backend that keeps entries in a database and tiles as objects
 * implements the same contract and runs the same conformance suite
 * (test/storage/log-store-conformance.ts).
 *
 * The contract (spec/storage.md, "The log store"):
 *   - `commit` is atomic and durable once it resolves: after a crash, once `load` has run, either
 *     all of a batch (its entries, lookup keys, tree strata, tree state and checkpoint) is there
 *     or none of it (a store that writes a batch in parts puts an unfinished one back in `load`). It
 *     reads back what it wrote before resolving, so a write the medium acknowledged but did not
 *     apply fails *before* the caller signs or acknowledges anything.
 *   - Reads see every commit that resolved. Nothing is ever updated except the tree state, the
 *     stored dedup rule, edge strata (rewritten as they fill) and a size's checkpoint note (a later
 *     signature of the same tree: re-signed, or cosigned by witnesses).
 *   - A failed call may leave the store unusable; `recover()` makes it usable again (reopen) or
 *     throws. The caller stops acknowledging until it has recovered and reloaded (fail-stop).
 *   - Indices are safe integers; ids are 16 bytes; hashes are 32 bytes.
 */
import type { EntryBatch } from "./entry-batch.js";

export { EntryBatch, type EntryWrite } from "./entry-batch.js";

/** The tree state stored with every batch: enough to resume appending. */
export interface TreeState {
  readonly size: number;
  /** Hashes of rangeNodes(0, size), left to right (src/core/compact.ts). */
  readonly compact: readonly Uint8Array[];
}

/** Which submissions are duplicates (src/log/dedup.ts). */
export type DedupRule = "key" | "payload";

/**
 * A tile's stratum: the 8 levels of nodes under one tile, as the tree encodes them
 * (src/log/strata.ts). Opaque bytes to the store; the edge stratum of each level is rewritten as
 * it fills, a full one never changes.
 */
export interface StratumWrite {
  readonly level: number;
  readonly index: number;
  readonly bytes: Uint8Array;
}

/** One batch: stored all together or not at all. */
export interface BatchWrite {
  /** The new entries, packed (./entry-batch.ts), with every key each is found by. */
  readonly entries: EntryBatch;
  /** Idempotency keys newly pointing at an existing entry (a duplicate submitted with a new key). */
  readonly keyAliases: readonly { readonly keyHash: Uint8Array; readonly index: number }[];
  readonly strata: readonly StratumWrite[];
  /** The tree state after the batch; undefined when the batch added no entry. */
  readonly state: TreeState | undefined;
  /** The signed checkpoint note for the new size; undefined when the batch added no entry. */
  readonly checkpoint: { readonly size: number; readonly note: string } | undefined;
  /**
   * The store's `stageLeaves` of these entries, when the caller staged them: commit waits for
   * it (and fails if it failed) and, if it resolved true, does not write the leaves again.
   */
  readonly leavesStaged?: Promise<boolean>;
}

/** What `load` finds. */
export interface StoredLog {
  readonly state: TreeState | undefined;
  /** The note stored for the largest size, if any. */
  readonly latestCheckpoint: string | undefined;
  /** The stored dedup rule (undefined: none stored). */
  readonly dedup: DedupRule | undefined;
  /** Whether the store holds anything at all (a store with data but no state is damaged). */
  readonly holdsData: boolean;
  /**
   * Set when load took an unfinished batch back out (a store that writes a batch in two parts
   * at once, and found only one durable): the tree size it stored and the size it went back to.
   */
  readonly undone?: { readonly from: number; readonly to: number };
}

export interface LogStore {
  /** What the store holds: the tree state, latest checkpoint and dedup rule. */
  load(): Promise<StoredLog>;
  /** A new log's first write: its dedup rule, empty tree state and first checkpoint, together. */
  create(dedup: DedupRule, checkpointNote: string): Promise<void>;
  /** Stores a changed dedup rule (durable once it resolves). */
  setDedup(rule: DedupRule): Promise<void>;

  /** The index of the entry holding each payload hash (payload dedup's lookup). */
  findByPayload(payloadHashes: readonly Uint8Array[]): Promise<(number | undefined)[]>;
  /** The index of the entry each idempotency-key hash points at. */
  findByKey(keyHashes: readonly Uint8Array[]): Promise<(number | undefined)[]>;
  findById(id: Uint8Array): Promise<number | undefined>;
  findByLeafHash(leafHash: Uint8Array): Promise<number | undefined>;

  /** Stores a batch atomically and durably, and reads it back (see the contract above). */
  commit(batch: BatchWrite): Promise<void>;
  /**
   * Optional: starts writing a prepared batch's leaves ahead of its commit, where the store
   * keeps them apart from the rest (resolves true once they are durable; false when it wrote
   * nothing and commit will). Leaves past the stored tree size are never read, and load removes
   * them, so a staged batch that is never committed leaves nothing behind.
   */
  stageLeaves?(entries: EntryBatch): Promise<boolean>;

  /** Stored leaf bytes of each index (undefined where missing). */
  leaves(indices: readonly number[]): Promise<(Uint8Array | undefined)[]>;
  /**
   * Stored leaves of [start, end) in index order, each with the index it is stored under. A
   * missing entry is simply absent: the caller checks the indices (never trusts position).
   */
  leafRange(start: number, end: number): Promise<[number, Uint8Array][]>;
  /** A stored stratum's bytes (undefined when missing). */
  stratum(level: number, index: number): Promise<Uint8Array | undefined>;

  /** The checkpoint note stored for `size`. */
  checkpoint(size: number): Promise<string | undefined>;
  /** Up to `limit` stored checkpoint notes, largest size first. */
  recentCheckpoints(limit: number): Promise<string[]>;
  /**
   * Stores `note` as the checkpoint of `size` (a re-signed or cosigned note of a tree already
   * stored). With `expected`, a compare-and-swap: stores only if the note stored for `size` is
   * exactly `expected`, and says whether it did. Durable once it resolves.
   */
  putCheckpoint(size: number, note: string, expected?: string): Promise<boolean>;

  /** Makes the store usable after a failure (reopen), or throws. */
  recover(): Promise<void>;
}
