/**
 * @module
 * The writer lease (spec/storage.md, "One writer: the lease"): which of the servers on one
 * PostgreSQL database integrates and signs a log. One row per server's set of logs:
 *
 *   lease (one PK, holder text, fence bigint, expires_at timestamptz)
 *
 * A server takes the lease when it has expired (or was never taken), which adds one to the
 * fence; the holder renews it well before it expires. Every write of tree state by a store given
 * the fence (PostgresLogStore's `fence` option) first locks the lease row and checks the fence is
 * still its own, in the same transaction as the write. So a holder that was paused (SIGSTOP, a
 * long GC, a network partition) and wakes up after another server took over writes nothing: its
 * first commit finds a newer fence and is refused whole. Time is the database's clock only
 * (`clock_timestamp()`), never the servers'.
 */
import type pg from "pg";
import { VellumError } from "../core/errors.js";

export interface LeaseHolder {
  readonly holder: string;
  readonly fence: number;
  /** Milliseconds until it expires (negative: expired). */
  readonly expiresInMs: number;
  /** Where the writer answers, once it has said (advertise). */
  readonly url: string | undefined;
}

function failure(doing: string, e: unknown): VellumError {
  if (e instanceof VellumError) return e;
  const err = e as { message?: string };
  return new VellumError("STORAGE_FAILURE", `PostgreSQL, ${doing}: ${err.message ?? String(e)}`, {
    cause: e,
  });
}

export class WriterLease {
  readonly #pool: pg.Pool;
  /** `<schema>.lease`, for stores that check the fence. */
  readonly table: string;
  readonly #holder: string;
  readonly #ttlMs: number;
  #fence: number | undefined;

  private constructor(pool: pg.Pool, table: string, holder: string, ttlMs: number) {
    this.#pool = pool;
    this.table = table;
    this.#holder = holder;
    this.#ttlMs = ttlMs;
  }

  /** The lease of `schema` (its table created on first use), for the server named `holder`. */
  static async open(
    pool: pg.Pool,
    schema: string,
    holder: string,
    ttlMs: number,
  ): Promise<WriterLease> {
    const table = `${schema}.lease`;
    try {
      await pool.query(
        `CREATE TABLE IF NOT EXISTS ${table} (
           one boolean PRIMARY KEY DEFAULT true CHECK (one),
           holder text NOT NULL,
           fence bigint NOT NULL,
           expires_at timestamptz NOT NULL)`,
      );
      await pool.query(
        `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS url text NOT NULL DEFAULT ''`,
      );
      await pool.query(
        `INSERT INTO ${table} (holder, fence, expires_at) VALUES ('', 0, '-infinity')
         ON CONFLICT (one) DO NOTHING`,
      );
    } catch (e) {
      throw failure(`creating ${table}`, e);
    }
    return new WriterLease(pool, table, holder, ttlMs);
  }

  get holder(): string {
    return this.#holder;
  }

  /** The fence this server holds, or undefined. */
  get fence(): number | undefined {
    return this.#fence;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Takes the lease if it is free or expired: the new fence, or undefined. */
  async tryAcquire(): Promise<number | undefined> {
    try {
      const res = await this.#pool.query<{ fence: string }>(
        `UPDATE ${this.table}
            SET holder = $1, fence = fence + 1, url = '',
                expires_at = clock_timestamp() + $2 * interval '1 millisecond'
          WHERE expires_at < clock_timestamp()
          RETURNING fence`,
        [this.#holder, this.#ttlMs],
      );
      const row = res.rows[0];
      this.#fence = row === undefined ? undefined : Number(row.fence);
      return this.#fence;
    } catch (e) {
      throw failure("taking the writer lease", e);
    }
  }

  /** Extends the lease this server holds; false when it is no longer its own. */
  async renew(): Promise<boolean> {
    if (this.#fence === undefined) return false;
    try {
      const res = await this.#pool.query(
        `UPDATE ${this.table}
            SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
          WHERE holder = $1 AND fence = $2`,
        [this.#holder, this.#fence, this.#ttlMs],
      );
      if (res.rowCount !== 1) this.#fence = undefined;
      return res.rowCount === 1;
    } catch (e) {
      throw failure("renewing the writer lease", e);
    }
  }

  /** Says where the writer answers (its front ends forward there); only while it holds the lease. */
  async advertise(url: string): Promise<void> {
    if (this.#fence === undefined) return;
    try {
      await this.#pool.query(`UPDATE ${this.table} SET url = $3 WHERE holder = $1 AND fence = $2`, [
        this.#holder,
        this.#fence,
        url,
      ]);
    } catch (e) {
      throw failure("advertising the writer's URL", e);
    }
  }

  /** Who holds the lease now. */
  async current(): Promise<LeaseHolder> {
    try {
      const res = await this.#pool.query<{
        holder: string;
        fence: string;
        ms: number;
        url: string;
      }>(
        `SELECT holder, fence, url,
                (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ms
           FROM ${this.table}`,
      );
      const row = res.rows[0];
      return {
        holder: row?.holder ?? "",
        fence: Number(row?.fence ?? 0),
        expiresInMs: Number.isFinite(row?.ms) ? (row?.ms as number) : -1,
        url: row?.url === "" || row === undefined ? undefined : row.url,
      };
    } catch (e) {
      throw failure("reading the writer lease", e);
    }
  }

  /** Gives the lease up at once (a clean stop), so a standby need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.#fence === undefined) return;
    const fence = this.#fence;
    this.#fence = undefined;
    await this.#pool
      .query(`UPDATE ${this.table} SET expires_at = '-infinity' WHERE holder = $1 AND fence = $2`, [
        this.#holder,
        fence,
      ])
      .catch(() => undefined);
  }
}
