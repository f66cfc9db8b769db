/**
 * @module
 * The ordered key-value contract (types.ts) in PostgreSQL, for what a server keeps besides its
 * logs — tokens, the archive's progress — so that with `--store postgres://…` all of it lives in
 * the database and every front end sees the same (spec/storage.md, "PostgreSQL").
 *
 * One table `<schema>.kv (k bytea PRIMARY KEY, v bytea)` holds every namespace, under the same
 * `!name!` prefixes as the LevelDB layout (namespace.ts). PostgreSQL orders bytea bytewise,
 * unsigned, a proper prefix first — the contract's order — so a range is one indexed scan. A
 * batch is one transaction (durable at COMMIT with synchronous_commit on); a failed write stops
 * writes (fail-stop) until `recover()` finds the server answering again.
 */
import type pg from "pg";
import { VellumError } from "../core/errors.js";
import { checkKey, checkKeys, checkOps, checkRange } from "./checks.js";
import { InFlight } from "./inflight.js";
import { namespacePrefix, prefixKey } from "./namespace.js";
import { postgresFailure } from "./postgres-errors.js";
import type { Database, KeyValueStore, RangeOptions, WriteOp } from "./types.js";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/; // PostgreSQL identifiers: at most 63 bytes

const toBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
/** A fresh plain Uint8Array the caller owns, from `b[start..]`. */
const owned = (b: Buffer, start = 0) => new Uint8Array(b.subarray(start));

const failure = (what: string, e: unknown): VellumError => postgresFailure(e, what);

export class PostgresDatabase implements Database {
  readonly #pool: pg.Pool;
  readonly #table: string;
  readonly #inflight = new InFlight();
  #state: "open" | "closing" | "closed" = "open";
  #closing: Promise<void> | undefined;
  #failure: VellumError | undefined;

  private constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool;
    this.#table = `${schema}.kv`;
  }

  /** Opens the key-value table in `schema` (created on first use) over `pool` (the caller's). */
  static async open(pool: pg.Pool, schema: string): Promise<PostgresDatabase> {
    if (!SCHEMA_NAME.test(schema)) {
      throw new VellumError("MALFORMED", `"${schema}" is not a schema name`);
    }
    try {
      const c = await pool.connect();
      try {
        await c.query("BEGIN");
        await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`vellum schema ${schema}`]);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${schema}.kv (k bytea PRIMARY KEY, v bytea NOT NULL)`,
        );
        await c.query("COMMIT");
      } catch (e) {
        await c.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    } catch (e) {
      throw failure(`creating ${schema}.kv`, e);
    }
    return new PostgresDatabase(pool, schema);
  }

  namespace(name: string): KeyValueStore {
    const prefix = namespacePrefix(name);
    this.assertOpen();
    return new PostgresStore(this, name, prefix);
  }

  /** Waits for operations in flight; the pool is the caller's to end. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = "closing";
      await this.#inflight.idle();
      this.#state = "closed";
    })();
    return this.#closing;
  }

  assertOpen(): void {
    if (this.#state !== "open") {
      throw new VellumError("UNAVAILABLE", `the PostgreSQL store ${this.#table} is closed`);
    }
  }

  get pool(): pg.Pool {
    return this.#pool;
  }

  get table(): string {
    return this.#table;
  }

  get inflight(): InFlight {
    return this.#inflight;
  }

  get failure(): VellumError | undefined {
    return this.#failure;
  }

  failed(e: VellumError): void {
    this.#failure ??= e;
  }

  /** Writes again once the server answers (a transaction that failed left nothing behind). */
  async recover(): Promise<void> {
    this.assertOpen();
    try {
      await this.#pool.query("SELECT 1");
    } catch (e) {
      throw failure("checking the connection", e);
    }
    this.#failure = undefined;
  }
}

class PostgresStore implements KeyValueStore {
  readonly #owner: PostgresDatabase;
  readonly #name: string;
  readonly #prefix: Uint8Array;
  readonly #inflight = new InFlight();
  #closed = false;

  constructor(owner: PostgresDatabase, name: string, prefix: Uint8Array) {
    this.#owner = owner;
    this.#name = name;
    this.#prefix = prefix;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#run("get", async (pool, table) => {
      const res = await pool.query<{ v: Buffer }>(`SELECT v FROM ${table} WHERE k = $1`, [
        toBuffer(prefixKey(this.#prefix, checkKey(key))),
      ]);
      const row = res.rows[0];
      return row === undefined ? undefined : owned(row.v);
    });
  }

  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    return this.#run("getMany", async (pool, table) => {
      checkKeys(keys);
      if (keys.length === 0) return [];
      const full = keys.map((k) => toBuffer(prefixKey(this.#prefix, k)));
      const res = await pool.query<{ k: Buffer; v: Buffer }>(
        `SELECT k, v FROM ${table} WHERE k = ANY($1::bytea[])`,
        [full],
      );
      const found = new Map(res.rows.map((r) => [r.k.toString("hex"), r.v]));
      return full.map((k) => {
        const v = found.get(k.toString("hex"));
        return v === undefined ? undefined : owned(v);
      });
    });
  }

  range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    return this.#run("range", async (pool, table) => {
      const { gte, lt, limit, reverse } = checkRange(options);
      if (limit === 0) return [];
      const p = this.#prefix;
      const res = await pool.query<{ k: Buffer; v: Buffer }>(
        `SELECT k, v FROM ${table} WHERE k >= $1 AND k < $2 ORDER BY k ${reverse ? "DESC" : "ASC"}${limit === Number.POSITIVE_INFINITY ? "" : " LIMIT $3"}`,
        [
          toBuffer(prefixKey(p, gte)),
          toBuffer(prefixKey(p, lt)),
          ...(limit === Number.POSITIVE_INFINITY ? [] : [limit]),
        ],
      );
      return res.rows.map((r): [Uint8Array, Uint8Array] => [owned(r.k, p.length), owned(r.v)]);
    });
  }

  write(ops: readonly WriteOp[]): Promise<void> {
    return this.#run("write", async (pool, table) => {
      const stopped = this.#owner.failure;
      if (stopped !== undefined) {
        throw new VellumError(
          "STORAGE_FAILURE",
          `writes are stopped after a failed write (${stopped.message}); the store must be recovered first`,
          { cause: stopped },
        );
      }
      const checked = checkOps(ops);
      if (checked.length === 0) return;
      // Copied now, before the first await: the caller may reuse its buffers once write() returns.
      const rows = checked.map((op) => ({
        k: toBuffer(prefixKey(this.#prefix, op.key)),
        v: op.type === "put" ? Buffer.from(op.value) : undefined,
      }));
      // Later ops on a key win: apply them in order inside one transaction.
      let client: pg.PoolClient | undefined;
      try {
        client = await pool.connect();
        await client.query("BEGIN");
        for (const { k, v } of rows) {
          if (v !== undefined) {
            await client.query(
              `INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`,
              [k, v],
            );
          } else {
            await client.query(`DELETE FROM ${table} WHERE k = $1`, [k]);
          }
        }
        await client.query("COMMIT");
      } catch (e) {
        await client?.query("ROLLBACK").catch(() => undefined);
        const f = failure(`write in namespace ${JSON.stringify(this.#name)}`, e);
        this.#owner.failed(f);
        throw f;
      } finally {
        client?.release();
      }
    });
  }

  recover(): Promise<void> {
    return this.#owner.recover();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inflight.idle();
  }

  async #run<T>(what: string, f: (pool: pg.Pool, table: string) => Promise<T>): Promise<T> {
    this.#owner.assertOpen();
    if (this.#closed) {
      throw new VellumError("UNAVAILABLE", `namespace ${JSON.stringify(this.#name)} is closed`);
    }
    const owner = this.#owner;
    owner.inflight.enter();
    this.#inflight.enter();
    try {
      return await f(owner.pool, owner.table);
    } catch (e) {
      throw failure(`${what} in namespace ${JSON.stringify(this.#name)}`, e);
    } finally {
      this.#inflight.leave();
      owner.inflight.leave();
    }
  }
}
