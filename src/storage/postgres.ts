/**
 * @module
 * A log's store in PostgreSQL (spec/storage.md, "PostgreSQL"): the LogStore contract
 * (log-store.ts) over five tables in the log's own schema, so one database can hold several
 * logs (the log, its index log, its access log).
 *
 *   entries      (idx bigint PK, leaf, id UNIQUE, leaf_hash UNIQUE, payload_hash UNIQUE NULL,
 *                 key_hash UNIQUE NULL: the idempotency key the entry was submitted with)
 *   idem_keys    (key_hash PK, idx)                    other keys → entry: aliases of duplicates
 *                                                      (and the keys of logs made before key_hash)
 *   strata       ((level, idx) PK, bytes)              the tree's strata (edge ones rewritten)
 *   state        (one row: size, compact bytea[], dedup, version)
 *   checkpoints  (size PK, note)                       a size's note (re-signed/cosigned: updated)
 *
 * A batch is one transaction, one statement (commit_batch; synchronous_commit on: durable when
 * it returns, so nothing is read back). Its tree state is a compare-and-swap: it moves from the size the batch starts at,
 * or the batch fails and nothing of it is stored — two writers can never store two trees of one
 * size. Entries and idempotency keys are append-only: triggers refuse UPDATE, DELETE and
 * TRUNCATE (defence in depth: a superuser can drop a trigger; the log's signatures and its
 * witnesses are what make a change detectable).
 */
import type pg from "pg";
import { VellumError } from "../core/errors.js";
import type { BatchWrite, DedupRule, LogStore, StoredLog, TreeState } from "./log-store.js";
import { postgresFailure } from "./postgres-errors.js";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/; // PostgreSQL identifiers: at most 63 bytes

function schemaSql(s: string): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.entries (
  idx bigint PRIMARY KEY,
  leaf bytea NOT NULL,
  id bytea NOT NULL UNIQUE,
  leaf_hash bytea NOT NULL UNIQUE,
  payload_hash bytea UNIQUE
);
-- An entry's own idempotency key lives in its row: one insert and one index per entry, where
-- a separate table took a second insert, a second heap and a round trip (measured: a 526-entry
-- batch committed in 0.6 of the time). Added to logs made before it, whose keys stay in idem_keys.
ALTER TABLE ${s}.entries ADD COLUMN IF NOT EXISTS key_hash bytea;
CREATE UNIQUE INDEX IF NOT EXISTS entries_key_hash ON ${s}.entries (key_hash);
CREATE TABLE IF NOT EXISTS ${s}.idem_keys (key_hash bytea PRIMARY KEY, idx bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ${s}.strata (
  level int NOT NULL, idx bigint NOT NULL, bytes bytea NOT NULL, PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS ${s}.state (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  size bigint NOT NULL,
  compact bytea[] NOT NULL,
  dedup text NOT NULL,
  version bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ${s}.checkpoints (size bigint PRIMARY KEY, note text NOT NULL);
-- A batch in one statement, so one round trip (commit, below). Raises VL001 when the writer
-- lease's fence is not the caller's, VL002 when the tree state is no longer at p_from; either
-- way nothing of the batch is stored. Entries and strata arrive packed in single bytea values,
-- sent in binary: fixed-width fields back to back (ids 16 bytes, hashes 32), variable ones
-- (leaves, strata) back to back with their end offsets; p_flags has a byte per entry, 1 = it
-- has a payload hash, 2 = a key hash (zeros hold the place of an absent one).
DROP FUNCTION IF EXISTS ${s}.commit_batch(regclass, bigint, bigint, bigint, bytea[], bigint[],
  bytea[], bytea[], bytea[], bytea[], bytea[], bytea[], bigint[], int[], bigint[], bytea[],
  bigint, text);
CREATE OR REPLACE FUNCTION ${s}.commit_batch(
  p_fence_table regclass, p_fence bigint,
  p_from bigint, p_size bigint, p_compact bytea[],
  p_first bigint, p_count int, p_leaves bytea, p_leaf_ends int[], p_ids bytea,
  p_leaf_hashes bytea, p_flags bytea, p_payload_hashes bytea, p_key_hashes bytea,
  p_alias_hashes bytea, p_alias_idx bigint[],
  p_level int[], p_stratum_idx bigint[], p_strata bytea, p_strata_ends int[],
  p_checkpoint_size bigint, p_note text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  current_fence bigint;
BEGIN
  IF p_fence_table IS NOT NULL THEN
    EXECUTE format('SELECT fence FROM %s FOR UPDATE', p_fence_table) INTO current_fence;
    IF current_fence IS DISTINCT FROM p_fence THEN
      RAISE EXCEPTION USING ERRCODE = 'VL001', MESSAGE = coalesce(current_fence::text, 'none');
    END IF;
  END IF;
  IF p_size IS NOT NULL THEN
    UPDATE ${s}.state SET size = p_size, compact = p_compact, version = version + 1
     WHERE size = p_from;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'VL002', MESSAGE = 'the tree state moved';
    END IF;
  END IF;
  IF p_count > 0 THEN
    INSERT INTO ${s}.entries (idx, leaf, id, leaf_hash, payload_hash, key_hash)
    SELECT p_first + i,
           substring(p_leaves FROM coalesce(p_leaf_ends[i], 0) + 1
                     FOR p_leaf_ends[i + 1] - coalesce(p_leaf_ends[i], 0)),
           substring(p_ids FROM i * 16 + 1 FOR 16),
           substring(p_leaf_hashes FROM i * 32 + 1 FOR 32),
           CASE WHEN get_byte(p_flags, i) & 1 = 1
                THEN substring(p_payload_hashes FROM i * 32 + 1 FOR 32) END,
           CASE WHEN get_byte(p_flags, i) & 2 = 2
                THEN substring(p_key_hashes FROM i * 32 + 1 FOR 32) END
      FROM generate_series(0, p_count - 1) AS i;
  END IF;
  IF cardinality(p_alias_idx) > 0 THEN
    INSERT INTO ${s}.idem_keys (key_hash, idx)
    SELECT substring(p_alias_hashes FROM (n - 1) * 32 + 1 FOR 32), p_alias_idx[n]
      FROM generate_series(1, cardinality(p_alias_idx)) AS n
    ON CONFLICT (key_hash) DO NOTHING;
  END IF;
  IF cardinality(p_level) > 0 THEN
    INSERT INTO ${s}.strata (level, idx, bytes)
    SELECT p_level[n], p_stratum_idx[n],
           substring(p_strata FROM coalesce(p_strata_ends[n - 1], 0) + 1
                     FOR p_strata_ends[n] - coalesce(p_strata_ends[n - 1], 0))
      FROM generate_series(1, cardinality(p_level)) AS n
    ON CONFLICT (level, idx) DO UPDATE SET bytes = EXCLUDED.bytes;
  END IF;
  IF p_checkpoint_size IS NOT NULL THEN
    INSERT INTO ${s}.checkpoints (size, note) VALUES (p_checkpoint_size, p_note)
    ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note;
  END IF;
END $$;
CREATE OR REPLACE FUNCTION ${s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'vellum: % on %.% is refused: the log is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME;
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'vellum_append_only_entries'
                 AND tgrelid = '${s}.entries'::regclass) THEN
    CREATE TRIGGER vellum_append_only_entries BEFORE UPDATE OR DELETE ON ${s}.entries
      FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_change();
    CREATE TRIGGER vellum_append_only_entries_truncate BEFORE TRUNCATE ON ${s}.entries
      FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_change();
    CREATE TRIGGER vellum_append_only_keys BEFORE UPDATE OR DELETE ON ${s}.idem_keys
      FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_change();
    CREATE TRIGGER vellum_append_only_keys_truncate BEFORE TRUNCATE ON ${s}.idem_keys
      FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_change();
  END IF;
END $$;
`;
}

const toBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const toBytes = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const hexKey = (b: Uint8Array) => toBuffer(b).toString("hex");

/** A write refused because another server now holds the writer lease (its fence is `now`). */
function leaseLost(now: string, mine: number | undefined): VellumError {
  return new VellumError(
    "STATE_MISMATCH",
    `this server no longer holds the writer lease (fence ${now}, its own ${mine ?? "none"}): another server is the writer; nothing was written`,
  );
}

/**
 * Values of one width (hashes, ids) for a lookup: $1 all of them back to back, in binary, $2
 * the width; UNPACKED is the bytea[] they make, computed once per statement (an InitPlan), so
 * `= ANY(UNPACKED)` is an index scan as with a bytea[] parameter, without sending every value
 * as text.
 */
function packedFixed(values: readonly Uint8Array[]): [Buffer, number] {
  const width = values[0]!.length;
  const bytes = Buffer.allocUnsafe(values.length * width);
  values.forEach((v, i) => {
    if (v.length !== width) throw new VellumError("MALFORMED", "lookup values of one width");
    bytes.set(v, i * width);
  });
  return [bytes, width];
}

const UNPACKED =
  "ARRAY(SELECT substring($1::bytea FROM i * $2::int + 1 FOR $2::int) FROM generate_series(0, length($1::bytea) / $2::int - 1) AS i)";

/**
 * Byte strings back to back, and where each ends: one bytea parameter (a Buffer, which the
 * driver sends in binary) instead of a bytea[] (sent as text, two hex digits a byte, and parsed
 * element by element on both sides).
 */
function packed(parts: readonly Uint8Array[]): { bytes: Buffer; ends: number[] } {
  const ends = new Array<number>(parts.length);
  let total = 0;
  for (let i = 0; i < parts.length; i++) {
    total += parts[i]!.length;
    ends[i] = total;
  }
  const bytes = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, ends };
}

export interface PostgresLogStoreOptions {
  /** A pool shared by the logs of one server (the caller ends it). */
  readonly pool: pg.Pool;
  /** The log's schema: lower-case letters, digits and _, e.g. "vellum_log". */
  readonly schema: string;
  /**
   * The writer lease this server holds (postgres-lease.ts): every write first locks the lease
   * row and checks its fence is still `value()`, in the same transaction, so a writer that lost
   * the lease writes nothing.
   */
  readonly fence?: { readonly table: string; readonly value: () => number | undefined };
}

export class PostgresLogStore implements LogStore {
  readonly #pool: pg.Pool;
  readonly #s: string;
  readonly #fence: PostgresLogStoreOptions["fence"];

  private constructor(pool: pg.Pool, schema: string, fence: PostgresLogStoreOptions["fence"]) {
    this.#pool = pool;
    this.#s = schema;
    this.#fence = fence;
  }

  /** In a write's transaction: refuses it unless this server still holds the writer lease. */
  async #checkFence(c: pg.PoolClient): Promise<void> {
    const f = this.#fence;
    if (f === undefined) return;
    const mine = f.value();
    const res = await c.query<{ fence: string }>(`SELECT fence FROM ${f.table} FOR UPDATE`);
    const now = Number(res.rows[0]?.fence);
    if (mine === undefined || now !== mine) throw leaseLost(String(now), mine);
  }

  /** Opens the log in `schema`, creating its tables on first use. */
  static async open(options: PostgresLogStoreOptions): Promise<PostgresLogStore> {
    if (!SCHEMA_NAME.test(options.schema)) {
      throw new VellumError(
        "MALFORMED",
        `"${options.schema}" is not a schema name: lower-case letters, digits and _, at most 63`,
      );
    }
    const store = new PostgresLogStore(options.pool, options.schema, options.fence);
    // Two servers creating the same schema at once: serialized by an advisory lock.
    await store.#transaction(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [
        `vellum schema ${options.schema}`,
      ]);
      await c.query(schemaSql(options.schema));
    });
    return store;
  }

  #failure(e: unknown, doing: string): VellumError {
    return postgresFailure(e, doing);
  }

  async #query<R extends pg.QueryResultRow>(
    doing: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (e) {
      throw this.#failure(e, doing);
    }
  }

  async #transaction<T>(
    work: (c: pg.PoolClient) => Promise<T>,
    doing = "a transaction",
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw this.#failure(e, "connecting");
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const out = await work(client);
      await client.query("COMMIT");
      return out;
    } catch (e) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw this.#failure(e, doing);
    } finally {
      client.release(broken);
    }
  }

  async load(): Promise<StoredLog> {
    const s = this.#s;
    const state = await this.#query<{ size: string; compact: Buffer[]; dedup: string }>(
      "loading the tree state",
      `SELECT size, compact, dedup FROM ${s}.state`,
    );
    const latest = await this.#query<{ note: string }>(
      "loading the latest checkpoint",
      `SELECT note FROM ${s}.checkpoints ORDER BY size DESC LIMIT 1`,
    );
    const any = await this.#query<{ n: boolean }>(
      "looking for data",
      `SELECT EXISTS (SELECT 1 FROM ${s}.entries) OR EXISTS (SELECT 1 FROM ${s}.strata) AS n`,
    );
    const row = state.rows[0];
    const treeState: TreeState | undefined =
      row === undefined ? undefined : { size: Number(row.size), compact: row.compact.map(toBytes) };
    return {
      state: treeState,
      latestCheckpoint: latest.rows[0]?.note,
      dedup: row === undefined ? undefined : (row.dedup as DedupRule),
      holdsData: row !== undefined || latest.rows.length > 0 || any.rows[0]?.n === true,
    };
  }

  async create(dedup: DedupRule, checkpointNote: string): Promise<void> {
    const s = this.#s;
    await this.#transaction(async (c) => {
      await this.#checkFence(c);
      await c.query(`INSERT INTO ${s}.state (size, compact, dedup) VALUES (0, '{}', $1)`, [dedup]);
      await c.query(`INSERT INTO ${s}.checkpoints (size, note) VALUES (0, $1)`, [checkpointNote]);
    }, "creating the log");
  }

  async setDedup(rule: DedupRule): Promise<void> {
    await this.#transaction(async (c) => {
      await this.#checkFence(c);
      await c.query(`UPDATE ${this.#s}.state SET dedup = $1`, [rule]);
    }, "storing the dedup rule");
  }

  async #lookup(
    column: "payload_hash" | "id" | "leaf_hash",
    values: readonly Uint8Array[],
  ): Promise<(number | undefined)[]> {
    if (values.length === 0) return [];
    const res = await this.#query<{ k: Buffer; idx: string }>(
      `looking up entries by ${column}`,
      `SELECT ${column} AS k, idx FROM ${this.#s}.entries WHERE ${column} = ANY(${UNPACKED})`,
      packedFixed(values),
    );
    const found = new Map(res.rows.map((r) => [r.k.toString("hex"), Number(r.idx)]));
    return values.map((v) => found.get(hexKey(v)));
  }

  findByPayload(payloadHashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    return this.#lookup("payload_hash", payloadHashes);
  }

  async findByKey(keyHashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    if (keyHashes.length === 0) return [];
    const s = this.#s;
    const res = await this.#query<{ k: Buffer; idx: string }>(
      "looking up idempotency keys",
      `SELECT key_hash AS k, idx FROM ${s}.entries WHERE key_hash = ANY(${UNPACKED})
       UNION ALL SELECT key_hash, idx FROM ${s}.idem_keys WHERE key_hash = ANY(${UNPACKED})`,
      packedFixed(keyHashes),
    );
    const found = new Map(res.rows.map((r) => [r.k.toString("hex"), Number(r.idx)]));
    return keyHashes.map((v) => found.get(hexKey(v)));
  }

  async findById(id: Uint8Array): Promise<number | undefined> {
    return (await this.#lookup("id", [id]))[0];
  }

  async findByLeafHash(leafHash: Uint8Array): Promise<number | undefined> {
    return (await this.#lookup("leaf_hash", [leafHash]))[0];
  }

  /**
   * One batch, atomically and durably: one statement (the schema's commit_batch function), so
   * one round trip and one implicit transaction, where BEGIN, six statements and COMMIT took
   * eight — each a turn of a busy event loop and a wake-up of the database — and the batch's
   * bytes go in binary, half the size of bytea[] text. The fence check, the compare-and-swap and
   * the inserts are the function's, in that order; synchronous_commit makes it durable when the
   * call returns.
   */
  async commit(batch: BatchWrite): Promise<void> {
    const s = this.#s;
    const e = batch.entries;
    const fence = this.#fence;
    const mine = fence?.value();
    const n = e.count;
    const from = batch.state === undefined ? null : batch.state.size - n;
    // Stored at first + i: the function numbers them so (a batch's indices run on by design).
    const first = e.start;
    const leaves = packed(e.leaves());
    const ids = toBuffer(e.ids.subarray(0, n * 16));
    const leafHashes = toBuffer(e.leafHashes.subarray(0, n * 32));
    const payloadHashes = Buffer.alloc(n * 32);
    const keyHashes = Buffer.alloc(n * 32);
    const flags = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      const payloadHash = e.payloadHash(i);
      if (payloadHash !== undefined) {
        payloadHashes.set(payloadHash, i * 32);
        flags[i]! |= 1;
      }
      const keyHash = e.keyHash(i);
      if (keyHash !== undefined) {
        keyHashes.set(keyHash, i * 32);
        flags[i]! |= 2;
      }
    }
    const aliases = Buffer.alloc(batch.keyAliases.length * 32);
    batch.keyAliases.forEach((k, i) => {
      aliases.set(k.keyHash, i * 32);
    });
    const strata = packed(batch.strata.map((x) => x.bytes));
    try {
      await this.#pool.query(
        `SELECT ${s}.commit_batch($1::regclass, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
        [
          fence?.table ?? null,
          mine ?? null,
          from,
          batch.state?.size ?? null,
          batch.state?.compact.map(toBuffer) ?? null,
          first,
          n,
          leaves.bytes,
          leaves.ends,
          ids,
          leafHashes,
          flags,
          payloadHashes,
          keyHashes,
          aliases,
          batch.keyAliases.map((k) => k.index),
          batch.strata.map((x) => x.level),
          batch.strata.map((x) => x.index),
          strata.bytes,
          strata.ends,
          batch.checkpoint?.size ?? null,
          batch.checkpoint?.note ?? null,
        ],
      );
    } catch (err) {
      const code = (err as { code?: string }).code;
      // commit_batch raises VL001 with the lease's current fence as its message.
      if (code === "VL001") throw leaseLost((err as Error).message, mine);
      if (code === "VL002") {
        throw new VellumError(
          "STATE_MISMATCH",
          `the stored tree is no longer at size ${from}: another writer committed (this batch was not stored)`,
        );
      }
      throw this.#failure(err, "committing a batch");
    }
  }

  async leaves(indices: readonly number[]): Promise<(Uint8Array | undefined)[]> {
    if (indices.length === 0) return [];
    const res = await this.#query<{ idx: string; leaf: Buffer }>(
      "reading entries",
      `SELECT idx, leaf FROM ${this.#s}.entries WHERE idx = ANY($1::bigint[])`,
      [indices],
    );
    const found = new Map(res.rows.map((r) => [Number(r.idx), toBytes(r.leaf)]));
    return indices.map((i) => found.get(i));
  }

  async leafRange(start: number, end: number): Promise<[number, Uint8Array][]> {
    const res = await this.#query<{ idx: string; leaf: Buffer }>(
      "reading a range of entries",
      `SELECT idx, leaf FROM ${this.#s}.entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
      [start, end],
    );
    return res.rows.map((r) => [Number(r.idx), toBytes(r.leaf)]);
  }

  async stratum(level: number, index: number): Promise<Uint8Array | undefined> {
    const res = await this.#query<{ bytes: Buffer }>(
      "reading a stratum",
      `SELECT bytes FROM ${this.#s}.strata WHERE level = $1 AND idx = $2`,
      [level, index],
    );
    const row = res.rows[0];
    return row === undefined ? undefined : toBytes(row.bytes);
  }

  async checkpoint(size: number): Promise<string | undefined> {
    const res = await this.#query<{ note: string }>(
      "reading a checkpoint",
      `SELECT note FROM ${this.#s}.checkpoints WHERE size = $1`,
      [size],
    );
    return res.rows[0]?.note;
  }

  async recentCheckpoints(limit: number): Promise<string[]> {
    const res = await this.#query<{ note: string }>(
      "reading recent checkpoints",
      `SELECT note FROM ${this.#s}.checkpoints ORDER BY size DESC LIMIT $1`,
      [limit],
    );
    return res.rows.map((r) => r.note);
  }

  async putCheckpoint(size: number, note: string, expected?: string): Promise<boolean> {
    const s = this.#s;
    return this.#transaction(async (c) => {
      await this.#checkFence(c);
      const res =
        expected === undefined
          ? await c.query(
              `INSERT INTO ${s}.checkpoints (size, note) VALUES ($1, $2)
               ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note`,
              [size, note],
            )
          : await c.query(`UPDATE ${s}.checkpoints SET note = $2 WHERE size = $1 AND note = $3`, [
              size,
              note,
              expected,
            ]);
      return res.rowCount === 1;
    }, "storing a checkpoint");
  }

  /** The pool reconnects by itself; usable again once the server answers. */
  async recover(): Promise<void> {
    await this.#query("checking the connection", "SELECT 1");
  }
}
