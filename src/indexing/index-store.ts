/**
 * @module
 * The index's store (its derived data: every key's list and the map), as the engine and the
 * answers use it. Two implementations: LocalIndexStore (local-store.ts) does the work in the
 * calling thread over any key-value store (tests, tools); ChildIndexStore (child-store.ts)
 * does the same work in a child process over its own LevelDB, at a lower priority, so that parsing events, hashing
 * lists and rewriting the map never hold the server's event loop.
 *
 * Not safe for concurrent use: the engine serialises every call (its lock).
 */
import type { IndexKey } from "../core/event-keys.js";
import type { SmtProof } from "../core/smt.js";

export interface IndexStoreState {
  /** How many entries of the followed log the store covers. */
  readonly size: number;
  readonly mapRoot: Uint8Array;
  /** Why the store dropped what it held (it starts from nothing: the log is replayed). */
  readonly dropped?: string;
}

/** One entry of the followed log, as the store takes it in. */
export interface IndexedEntry {
  readonly index: number;
  readonly payload: Uint8Array;
}

/** A page of a key's run (src/core/list-run.ts) in the list of `count` entries. */
export interface ListRun {
  readonly listRoot: Uint8Array;
  readonly start: number;
  readonly end: number;
  readonly pageStart: number;
  readonly pageEnd: number;
  /** The page's positions and the run's boundaries, with their log indices. */
  readonly items: readonly { readonly position: number; readonly logIndex: number }[];
  readonly multiproof: readonly Uint8Array[];
}

export interface RunQuery {
  readonly key: IndexKey;
  /** The list size to answer for (a revision's; lists only grow). */
  readonly count: number;
  /** The log-index range [from, to). */
  readonly from: number;
  readonly to: number;
  readonly order: "asc" | "desc";
  readonly limit: number;
  /** Where the page starts (asc) or ends (desc); default: the run's start or end. */
  readonly at?: number;
}

export interface IndexStore {
  /** Reads the stored state, dropping anything cached (after a failed write: the store is the truth). */
  load(): Promise<IndexStoreState>;
  /**
   * Takes in entries [state.size, state.size + entries.length) of the followed log with the
   * store's key function; writes lists, map and the new state atomically. Returns the new map
   * root.
   */
  apply(entries: readonly IndexedEntry[]): Promise<Uint8Array>;
  /** Each key's list size (0 for a key no entry has). */
  counts(keys: readonly IndexKey[]): Promise<number[]>;
  run(query: RunQuery): Promise<ListRun>;
  /** The map proof for the key. */
  prove(key: IndexKey): Promise<SmtProof>;
  close(): Promise<void>;
}
