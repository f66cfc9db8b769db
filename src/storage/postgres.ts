/**
 * @module
 * A log's store in PostgreSQL (spec/storage.md, "PostgreSQL"): the LogStore contract
 * (log-store.ts) over five tables in the log's own schema, so one database can hold several
 * logs (the log, its index log, its access log).
 *
 *   entries      (idx bigint PK, leaf, id UNIQUE, leaf_hash UNIQUE, payload_hash UNIQUE NULL)
 *   idem_keys    (key_hash PK, idx)                    idempotency keys → entry
 *   strata       ((level, idx) PK, bytes)              the tree's strata (edge ones rewritten)
 *   state        (one row: size, compact bytea[], dedup, version)
 *   checkpoints  (size PK, note)                       a size's note (re-signed/cosigned: updated)
 *
 * A batch is one transaction (synchronous_commit on: durable when COMMIT returns, so nothing is
 * read back). Its tree state is a compare-and-swap: it moves from the size the batch starts at,
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
    if (mine === undefined || now !== mine) {
      throw new VellumError(
        "STATE_MISMATCH",
        `this server no longer holds the writer lease (fence ${now}, its own ${mine ?? "none"}): another server is the writer; nothing was written`,
      );
    }
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
      `SELECT ${column} AS k, idx FROM ${this.#s}.entries WHERE ${column} = ANY($1::bytea[])`,
      [values.map(toBuffer)],
    );
    const found = new Map(res.rows.map((r) => [r.k.toString("hex"), Number(r.idx)]));
    return values.map((v) => found.get(hexKey(v)));
  }

  findByPayload(payloadHashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    return this.#lookup("payload_hash", payloadHashes);
  }

  async findByKey(keyHashes: readonly Uint8Array[]): Promise<(number | undefined)[]> {
    if (keyHashes.length === 0) return [];
    const res = await this.#query<{ k: Buffer; idx: string }>(
      "looking up idempotency keys",
      `SELECT key_hash AS k, idx FROM ${this.#s}.idem_keys WHERE key_hash = ANY($1::bytea[])`,
      [keyHashes.map(toBuffer)],
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

  async commit(batch: BatchWrite): Promise<void> {
    const s = this.#s;
    await this.#transaction(async (c) => {
      await this.#checkFence(c);
      if (batch.state !== undefined) {
        // The compare-and-swap: from the size this batch starts at, or nothing.
        const from = batch.state.size - batch.entries.length;
        const moved = await c.query(
          `UPDATE ${s}.state SET size = $1, compact = $2::bytea[], version = version + 1 WHERE size = $3`,
          [batch.state.size, batch.state.compact.map(toBuffer), from],
        );
        if (moved.rowCount !== 1) {
          throw new VellumError(
            "STATE_MISMATCH",
            `the stored tree is no longer at size ${from}: another writer committed (this batch was not stored)`,
          );
        }
      }
      if (batch.entries.length > 0) {
        const e = batch.entries;
        await c.query(
          `INSERT INTO ${s}.entries (idx, leaf, id, leaf_hash, payload_hash)
           SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[])`,
          [
            e.map((x) => x.index),
            e.map((x) => toBuffer(x.leaf)),
            e.map((x) => toBuffer(x.id)),
            e.map((x) => toBuffer(x.leafHash)),
            e.map((x) => (x.payloadHash === undefined ? null : toBuffer(x.payloadHash))),
          ],
        );
      }
      const keys = [
        ...batch.entries.flatMap((x) =>
          x.keyHash === undefined ? [] : [{ keyHash: x.keyHash, index: x.index }],
        ),
        ...batch.keyAliases,
      ];
      if (keys.length > 0) {
        await c.query(
          `INSERT INTO ${s}.idem_keys (key_hash, idx)
           SELECT * FROM unnest($1::bytea[], $2::bigint[]) ON CONFLICT (key_hash) DO NOTHING`,
          [keys.map((k) => toBuffer(k.keyHash)), keys.map((k) => k.index)],
        );
      }
      if (batch.strata.length > 0) {
        const st = batch.strata;
        await c.query(
          `INSERT INTO ${s}.strata (level, idx, bytes)
           SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])
           ON CONFLICT (level, idx) DO UPDATE SET bytes = EXCLUDED.bytes`,
          [st.map((x) => x.level), st.map((x) => x.index), st.map((x) => toBuffer(x.bytes))],
        );
      }
      if (batch.checkpoint !== undefined) {
        await c.query(
          `INSERT INTO ${s}.checkpoints (size, note) VALUES ($1, $2)
           ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note`,
          [batch.checkpoint.size, batch.checkpoint.note],
        );
      }
    }, "committing a batch");
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
