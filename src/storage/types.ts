/**
 * @module
 * The storage contract: a small ordered key-value store with atomic, durable batch writes.
 *
 * Everything a log persists goes through this interface; the key layout lives in one place
 * (src/storage/kv-log-layout.ts), so drivers stay tiny and every driver runs the same conformance suite
 * (test/storage/contract.ts). Keys and values are bytes; keys sort bytewise (unsigned), so
 * integers in keys are written as 8-byte big-endian to make key order numeric order.
 *
 * Contract (every driver, including test doubles):
 * - `write(ops)` applies all of `ops` or none of them, in order (a later op on the same key wins),
 *   and when it resolves the write is durable: it survives a process crash or kill (for LevelDB:
 *   one batch with `sync: true`, i.e. the WAL is fdatasync'd). If it rejects, the caller must
 *   assume nothing about whether it was applied and re-read what it needs.
 * - Reads see every write that has resolved. A read never returns a partially applied write.
 * - Returned values are owned by the caller (drivers must not hand out buffers they reuse).
 * - Fail-stop: after a write rejects, every later `write()` on every namespace of the database
 *   rejects with STORAGE_FAILURE until `recover()` has succeeded. A store that failed a write may
 *   have lost track of what its files hold (a half-appended log record, pages the kernel dropped
 *   after a failed fsync); only reopening it re-reads what is really there. Reads keep working.
 * - `close()` waits for in-flight writes, then releases the store; later calls reject.
 */

export type WriteOp =
  | { readonly type: "put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: "del"; readonly key: Uint8Array };

/**
 * Adds one put to a write being built. The key and value are copied before it returns, so the
 * caller may reuse its buffers for the next put.
 */
export type Put = (key: Uint8Array, value: Uint8Array) => void;

export interface RangeOptions {
  /** Inclusive lower bound. */
  readonly gte: Uint8Array;
  /** Exclusive upper bound. */
  readonly lt: Uint8Array;
  /** At most this many entries (default: no limit). */
  readonly limit?: number;
  /** Descending key order instead of ascending. */
  readonly reverse?: boolean;
}

export interface KeyValueStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Values of `keys` in the same order; undefined where a key is absent. */
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** [key, value] pairs with gte <= key < lt, ascending unless `reverse`. */
  range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]>;
  /** Atomic and durable once resolved; see the module contract. */
  write(ops: readonly WriteOp[]): Promise<void>;
  /**
   * Optional, the same as `write` for puts that `fill` gives one at a time (it is called once,
   * at once): a sequencer batch of thousands of entries then never exists as a list of ops and
   * keys, all alive until the last is made. Callers go through `writePuts` (write-puts.ts),
   * which falls back to `write` for a driver without it.
   */
  writePuts?(fill: (put: Put) => void): Promise<void>;
  /**
   * Optional: `write`, durable before it resolves, with every write before it, even in a store
   * whose writes are not synced (LevelDB opened with `sync: false`). Where it is missing,
   * `write` is durable already.
   */
  writeDurable?(ops: readonly WriteOp[]): Promise<void>;
  /**
   * Optional: asks the store to rewrite the keys in [gte, lt) now, dropping what was deleted
   * there, so the space comes back at once rather than when the store would have got to it
   * (LevelDB: a manual compaction of the range). Changes nothing a read sees. For bulk deletes
   * (vellum migrate); a driver without one reclaims space in its own time.
   */
  compact?(range: { readonly gte: Uint8Array; readonly lt: Uint8Array }): Promise<void>;
  /**
   * After a failed write: makes the store writable again (LevelDB: closes and reopens the
   * database, so a fresh write-ahead log is used and the old one's records are checked and made
   * durable as tables). Called after a failure, whether the driver saw it or not (a write it
   * acknowledged but does not hold). Shared by every namespace of a database; concurrent callers
   * share one reopen. Rejects with STORAGE_FAILURE if reopening fails: call again later.
   */
  recover(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A database that holds several logs: each gets its own key space (namespace), so one process
 * can host many logs in one LevelDB directory. Namespaces never see each other's keys.
 */
export interface Database {
  namespace(name: string): KeyValueStore;
  close(): Promise<void>;
}
