/**
 * @module
 * The LevelDB driver (`level` 10 / classic-level 3): the storage contract of ./types.ts on one
 * LevelDB directory (spec/storage.md, "Drivers").
 *
 * - `write(ops)` is one chained batch written with `{ sync: true }`: LevelDB appends it to its WAL
 *   as one record and fdatasyncs before resolving, so a batch is all-or-nothing and survives a
 *   crash once acknowledged. (The chained form is ~8x faster than `db.batch(array)`.) A database
 *   opened with `sync: false` (derived data only) skips the fdatasync except in `writeDurable`.
 * - Reads (`get`, `getMany`, iterators) each read from an implicit LevelDB snapshot, so they never
 *   see half a batch.
 * - Namespaces are key prefixes (./namespace.ts), identical to `sublevel(name)`'s, kept in this
 *   driver rather than done through sublevels to skip per-op prefix transcoding.
 * - Opening a directory that another process (or another open in this process) holds fails with
 *   LOCKED; every other LevelDB error becomes STORAGE_FAILURE with the original as `cause`.
 * - Fail-stop (spec/storage.md, "Storage failures"): after any failed write, every later write of
 *   every namespace is refused until `recover()` has closed and reopened the database. LevelDB
 *   1.20 keeps appending to its write-ahead log after a failed append (only a failed sync stops
 *   it), and its recovery then drops everything after the damaged record: acknowledged entries
 *   lost. Reopening starts a fresh log; recovery turns the old one into a synced table.
 * - Before every open, the write-ahead logs are checked (./level-wal.ts): damage followed by
 *   valid records is refused (STORAGE_FAILURE, corrupt data) instead of silently dropped.
 * - Keys and values come back as plain Uint8Arrays (not Node Buffers, whose `slice()` is a view)
 *   that no one else references, so callers own them.
 */
import { Level } from "level";
import { VellumError } from "../core/errors.js";
import { checkKey, checkKeys, checkOps, checkRange } from "./checks.js";
import { storageFailure } from "./failure.js";
import { InFlight } from "./inflight.js";
import { checkWriteAheadLogs } from "./level-wal.js";
import { namespacePrefix, prefixKey } from "./namespace.js";
import type { Database, KeyValueStore, Put, RangeOptions, WriteOp } from "./types.js";

export interface LevelDatabaseOptions {
  /** Create the directory and an empty database when missing (default true). */
  readonly createIfMissing?: boolean;
  /**
   * LRU cache of uncompressed blocks, in bytes (default 32 MiB, LevelDB's is 8 MiB). Proof and
   * tile reads revisit the same recent blocks; 32 MiB keeps the hot right edge of a large log
   * in memory at a cost a small server can afford.
   */
  readonly cacheSize?: number;
  /**
   * Memtable (and WAL file) size before LevelDB flushes it to a table, in bytes (default 16 MiB,
   * LevelDB's is 4 MiB). Sequencer batches are large and append-only; a bigger memtable means
   * fewer level-0 flushes and compactions under load, at the price of replaying up to that much
   * WAL when reopening after a crash.
   */
  readonly writeBufferSize?: number;
  /**
   * Table files LevelDB keeps open (default 1,000, LevelDB's). Each open table holds its index
   * and Bloom-filter blocks in memory, so this bounds the anonymous memory that grows with the
   * database: with 1,000 in each of a data directory's two databases, it grew by about 244 MiB
   * over 100 million entries, until the caches were full.
   */
  readonly maxOpenFiles?: number;
  /**
   * Snappy-compress table blocks (default true, LevelDB's). Off for data that is mostly hashes,
   * which do not compress: LevelDB would try every block at every flush and compaction for
   * nothing (the verifiable index's store: spec/audit.md).
   */
  readonly compression?: boolean;
  /**
   * fdatasync every write before it resolves (default true). False only for derived data that
   * notices for itself when the machine restarted under unsynced writes and rebuilds (the
   * verifiable index's store: src/indexing/local-store.ts): without it, a write survives a
   * killed process (it is in the kernel's page cache) but not a machine crash, and its
   * `writeDurable` is the only write that does.
   */
  readonly sync?: boolean;
}

const DEFAULT_CACHE_SIZE = 32 * 1024 * 1024;
const DEFAULT_WRITE_BUFFER_SIZE = 16 * 1024 * 1024;

/** Bytes a range iterator may buffer per native call; a 1000-entry tile range fits in one. */
const RANGE_HIGH_WATER_MARK_BYTES = 1024 * 1024;

/** V8 keeps typed arrays of up to 64 bytes on its heap (see LevelStore.write). */
const SMALL_VALUE = 64;

type Db = Level<Uint8Array, Uint8Array>;
/** classic-level's manual compaction of a key range (what `level` is in Node). */
type Compacting = { compactRange(start: Uint8Array, end: Uint8Array): Promise<void> };

/**
 * Opens (by default creating) the LevelDB database in `dir`.
 * Throws LOCKED when another process or open holds `dir`, STORAGE_FAILURE for other I/O errors.
 *
 * Every LevelDB table carries a bloom filter (10 bits per key): classic-level 3 always installs
 * one and offers no option for it. It matters here because many point reads are misses (is this
 * entry already in the log?), which the filter answers without reading a block.
 */
export async function openLevelDatabase(
  dir: string,
  options: LevelDatabaseOptions = {},
): Promise<Database> {
  const db: Db = new Level<Uint8Array, Uint8Array>(dir, {
    keyEncoding: "view",
    valueEncoding: "view",
    createIfMissing: options.createIfMissing ?? true,
    cacheSize: options.cacheSize ?? DEFAULT_CACHE_SIZE,
    writeBufferSize: options.writeBufferSize ?? DEFAULT_WRITE_BUFFER_SIZE,
    ...(options.maxOpenFiles === undefined ? {} : { maxOpenFiles: options.maxOpenFiles }),
    ...(options.compression === undefined ? {} : { compression: options.compression }),
  });
  await openChecked(db, dir);
  return new LevelDatabase(db, dir, options.sync ?? true);
}

/** Checks the write-ahead logs, then opens `db` (first open or a reopen after a failure). */
async function openChecked(db: Db, dir: string): Promise<void> {
  let damage: ReturnType<typeof checkWriteAheadLogs>;
  try {
    damage = checkWriteAheadLogs(dir);
  } catch (e) {
    throw storageFailure(`cannot check the write-ahead logs in ${dir}`, e);
  }
  if (damage !== undefined) {
    throw new VellumError(
      "STORAGE_FAILURE",
      `corrupt data (CORRUPTION): write-ahead log ${damage.file} is damaged at byte ${damage.offset} (${damage.reason}) and holds valid records after it (from byte ${damage.validAfter}), which LevelDB would silently drop. Nothing was opened. Keep a copy of ${dir}, then restore it from a backup (see spec/storage.md, "Storage failures")`,
    );
  }
  try {
    await db.open();
  } catch (e) {
    if (isLockError(e)) {
      throw new VellumError("LOCKED", `${dir} is in use by another Vellum process (LevelDB LOCK)`, {
        cause: e,
      });
    }
    throw storageFailure(`cannot open the LevelDB database in ${dir}`, e);
  }
}

/**
 * classic-level reports "IO error: lock ..." (posix) / "IO error: LockFile ..." (windows) as
 * LEVEL_LOCKED; abstract-level wraps open failures in LEVEL_DATABASE_NOT_OPEN with it as cause.
 */
function isLockError(e: unknown): boolean {
  for (let err = e, depth = 0; err instanceof Error && depth < 5; depth++) {
    if ((err as { code?: unknown }).code === "LEVEL_LOCKED") return true;
    if (/^IO error: lock(file)? /i.test(err.message)) return true;
    err = err.cause;
  }
  return false;
}

/**
 * `b[start..]` as a plain Uint8Array the caller owns. classic-level returns Node Buffers, whose
 * `slice()` is a view: handing those out would make a caller's "copy" alias our memory. A Buffer
 * that owns its whole ArrayBuffer (what classic-level allocates per read) is rewrapped without a
 * copy; anything else is copied.
 */
function owned(b: Uint8Array, start = 0): Uint8Array {
  if (start === 0 && b.byteOffset === 0 && b.buffer.byteLength === b.byteLength) {
    return new Uint8Array(b.buffer, 0, b.byteLength);
  }
  return new Uint8Array(b.subarray(start));
}

class LevelDatabase implements Database {
  readonly #db: Db;
  readonly #dir: string;
  readonly #inflight = new InFlight();
  #state: "open" | "closing" | "closed" = "open";
  #closing: Promise<void> | undefined;
  /** The write failure that stopped writes, until `recover()` reopens the database. */
  #failure: VellumError | undefined;
  #reopening: Promise<void> | undefined;

  /** Whether writes are fdatasynced (LevelDatabaseOptions.sync). */
  readonly sync: boolean;

  constructor(db: Db, dir: string, sync: boolean) {
    this.#db = db;
    this.#dir = dir;
    this.sync = sync;
  }

  namespace(name: string): KeyValueStore {
    const prefix = namespacePrefix(name);
    this.assertOpen();
    return new LevelStore(this, name, prefix);
  }

  /** Waits for in-flight operations of every namespace, then closes LevelDB. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#state = "closing";
      this.#closing = (async () => {
        await this.#reopening?.catch(() => undefined);
        await this.#inflight.idle();
        try {
          await this.#db.close();
        } catch (e) {
          throw storageFailure(`close of ${this.#dir}`, e);
        } finally {
          this.#state = "closed";
        }
      })();
    }
    return this.#closing;
  }

  get failure(): VellumError | undefined {
    return this.#failure;
  }

  /** Internal: a write failed. Every later write is refused until `recover()`. */
  failed(e: VellumError): void {
    this.#failure ??= e;
  }

  /**
   * Closes and reopens LevelDB after a failed write, so the damaged write-ahead log is checked,
   * replayed into a synced table and replaced by a fresh one. One reopen at a time. Also after a
   * failure the driver did not see (a write it acknowledged that the log could not read back).
   * Rejects (and stays failed) when the check or the reopen fails.
   */
  recover(): Promise<void> {
    this.#reopening ??= (async () => {
      try {
        this.assertOpen();
        await this.#inflight.idle();
        try {
          await this.#db.close();
        } catch (e) {
          throw storageFailure(`close of ${this.#dir} before reopening it`, e);
        }
        await openChecked(this.#db, this.#dir);
        this.#failure = undefined;
      } finally {
        this.#reopening = undefined;
      }
    })();
    return this.#reopening;
  }

  /** Internal: resolves once no reopen is under way (operations wait for it). */
  get reopening(): Promise<void> | undefined {
    return this.#reopening;
  }

  /** Internal: the LevelDB handle, for this module's stores. */
  get db(): Db {
    return this.#db;
  }

  /** Internal: operations of all namespaces, which `close()` waits for. */
  get inflight(): InFlight {
    return this.#inflight;
  }

  assertOpen(): void {
    if (this.#state !== "open") {
      throw new VellumError("UNAVAILABLE", `LevelDB database ${this.#dir} is closed`);
    }
  }
}

class LevelStore implements KeyValueStore {
  readonly #owner: LevelDatabase;
  readonly #name: string;
  readonly #prefix: Uint8Array;
  readonly #inflight = new InFlight();
  #closed = false;

  constructor(owner: LevelDatabase, name: string, prefix: Uint8Array) {
    this.#owner = owner;
    this.#name = name;
    this.#prefix = prefix;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#run("get", async (db) => {
      const v = await db.get(prefixKey(this.#prefix, checkKey(key)));
      return v === undefined ? undefined : owned(v);
    });
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.#run("getMany", async (db) => {
      checkKeys(keys);
      if (keys.length === 0) return [];
      // The prefixed keys are views of one buffer: one allocation per call, not one per key
      // (and no per-key move off V8's heap when native code reads a small key).
      const p = this.#prefix;
      let total = 0;
      for (const k of keys) total += p.length + k.length;
      const scratch = new Uint8Array(total);
      const full: Uint8Array[] = new Array(keys.length);
      let at = 0;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        scratch.set(p, at);
        scratch.set(k, at + p.length);
        full[i] = scratch.subarray(at, at + p.length + k.length);
        at += p.length + k.length;
      }
      const values = await db.getMany(full);
      return values.map((v) => (v === undefined ? undefined : owned(v)));
    });
  }

  range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    return this.#run("range", async (db) => {
      const { gte, lt, limit, reverse } = checkRange(options);
      if (limit === 0) return [];
      const p = this.#prefix;
      const entries = await db
        .iterator({
          gte: prefixKey(p, gte),
          lt: prefixKey(p, lt),
          limit: limit === Number.POSITIVE_INFINITY ? -1 : limit,
          reverse,
          highWaterMarkBytes: RANGE_HIGH_WATER_MARK_BYTES,
        })
        .all();
      return entries.map(([k, v]): [Uint8Array, Uint8Array] => [owned(k, p.length), owned(v)]);
    });
  }

  write(ops: readonly WriteOp[]): Promise<void> {
    return this.#write(ops, this.#owner.sync);
  }

  /** A write fdatasynced even in a database opened without synced writes (and so every one before it). */
  writeDurable(ops: readonly WriteOp[]): Promise<void> {
    return this.#write(ops, true);
  }

  #write(ops: readonly WriteOp[], sync: boolean): Promise<void> {
    // Handed over once: the closure below outlives the copy into the native batch (it is held
    // until the write is done), and must not keep the ops alive with it.
    let handed: readonly WriteOp[] | undefined = ops;
    return this.#run("write", (db) => {
      const mine = handed!;
      handed = undefined;
      this.#checkWritable();
      const batch = this.#nativeBatch(db, checkOps(mine));
      return batch === undefined ? Promise.resolve() : this.#commit(batch, sync);
    });
  }

  writePuts(fill: (put: Put) => void): Promise<void> {
    let handed: ((put: Put) => void) | undefined = fill;
    return this.#run("write", (db) => {
      const mine = handed!;
      handed = undefined;
      this.#checkWritable();
      const p = this.#prefix;
      const batch = db.batch();
      let count = 0;
      try {
        mine((key, value) => {
          this.#put(batch, p, key, value);
          count++;
        });
      } catch (e) {
        void batch.close();
        throw e;
      }
      if (count === 0) {
        void batch.close();
        return Promise.resolve();
      }
      return this.#commit(batch, this.#owner.sync);
    });
  }

  #checkWritable(): void {
    const stopped = this.#owner.failure;
    if (stopped !== undefined) {
      throw new VellumError(
        "STORAGE_FAILURE",
        `writes are stopped after a failed write (${stopped.message}); the database must be recovered (reopened) first`,
        { cause: stopped },
      );
    }
  }

  /**
   * One put into a native batch. classic-level's batch_put copies key and value into the native
   * batch before returning (and this store adds no hooks or 'write' listeners, which would keep
   * references), so the prefixed key is assembled in a scratch buffer reused from put to put:
   * no allocation per op. Small values get the same treatment: a typed array of ≤ 64 bytes lives
   * on V8's heap, and handing it to native code makes V8 move it off-heap (a new ArrayBuffer and
   * backing store per value); a reused scratch is moved once.
   */
  #put(batch: ReturnType<Db["batch"]>, p: Uint8Array, k: Uint8Array, v: Uint8Array): void {
    const key = this.#scratch(this.#keyScratch, p.length + k.length, p);
    key.set(k, p.length);
    if (v.length > SMALL_VALUE) batch.put(key, v);
    else {
      const value = this.#scratch(this.#valueScratch, v.length, undefined);
      value.set(v);
      batch.put(key, value);
    }
  }

  /**
   * The ops copied into a native batch, synchronously (undefined when there are none). Nothing
   * waiting on the write keeps a reference to them: a sequencer batch is thousands of small
   * keys and values, and holding them through the fsync made V8's young-generation collections
   * copy them (and promote them) instead of dropping them.
   */
  #nativeBatch(db: Db, ops: readonly WriteOp[]): ReturnType<Db["batch"]> | undefined {
    if (ops.length === 0) return undefined;
    const p = this.#prefix;
    const batch = db.batch();
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (op.type === "put") this.#put(batch, p, op.key, op.value);
        else {
          const key = this.#scratch(this.#keyScratch, p.length + op.key.length, p);
          key.set(op.key, p.length);
          batch.del(key);
        }
      }
    } catch (e) {
      void batch.close();
      throw e;
    }
    return batch;
  }

  async #commit(batch: ReturnType<Db["batch"]>, sync: boolean): Promise<void> {
    try {
      await batch.write({ sync });
    } catch (e) {
      const failure = storageFailure(`write in namespace ${JSON.stringify(this.#name)}`, e);
      this.#owner.failed(failure);
      throw failure;
    }
  }

  recover(): Promise<void> {
    return this.#owner.recover();
  }

  /** Scratch buffers by length (a typed array's length is fixed), for `write`. */
  readonly #keyScratch: (Uint8Array | undefined)[] = [];
  readonly #valueScratch: (Uint8Array | undefined)[] = [];

  /** The scratch of `length` bytes in `cache`, made (starting with `prefix`) on first use. */
  #scratch(cache: (Uint8Array | undefined)[], length: number, prefix: Uint8Array | undefined) {
    let s = cache[length];
    if (s === undefined) {
      s = new Uint8Array(length);
      if (prefix !== undefined) s.set(prefix);
      cache[length] = s;
    }
    return s;
  }

  compact(range: { readonly gte: Uint8Array; readonly lt: Uint8Array }): Promise<void> {
    return this.#run("compact", async (db) => {
      const { gte, lt } = checkRange(range);
      // `level` in Node is classic-level, whose compactRange its types do not declare.
      await (db as unknown as Compacting).compactRange(
        prefixKey(this.#prefix, gte),
        prefixKey(this.#prefix, lt),
      );
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inflight.idle();
  }

  /** Runs one operation, counted in flight for this store and its database. */
  async #run<T>(what: string, f: (db: Db) => Promise<T>): Promise<T> {
    // Operations issued while the database is being reopened run once it is open again.
    const reopening = this.#owner.reopening;
    if (reopening !== undefined) await reopening.catch(() => undefined);
    this.#owner.assertOpen();
    if (this.#closed) {
      throw new VellumError("UNAVAILABLE", `namespace ${JSON.stringify(this.#name)} is closed`);
    }
    const owner = this.#owner;
    owner.inflight.enter();
    this.#inflight.enter();
    try {
      return await f(owner.db);
    } catch (e) {
      throw storageFailure(`${what} in namespace ${JSON.stringify(this.#name)}`, e);
    } finally {
      this.#inflight.leave();
      owner.inflight.leave();
    }
  }
}
