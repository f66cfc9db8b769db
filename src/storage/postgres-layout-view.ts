/**
 * @module
 * A PostgreSQL log (postgres.ts) seen through the embedded key layout (kv-log-layout.ts), read
 * only, so that `vellum fsck` runs one checker over either backend: the checker walks keys
 * (`e` entries, `t` strata, `c` checkpoints, `i`/`h`/`p`/`k` lookups, `s` state, `d` dedup rule)
 * and this view answers each from the table that holds it, in the same order and with the same
 * value bytes the embedded store would hold.
 *
 * Everything is read inside one REPEATABLE READ, READ ONLY transaction: the whole check sees one
 * snapshot, so it can run while a writer appends (a batch committed meanwhile is simply not seen,
 * never half seen).
 */
import type pg from "pg";
import { utf8Encode } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";
import { encodeIndex, entryKey } from "./kv-log-layout.js";
import { postgresFailure } from "./postgres-errors.js";
import { encodeState } from "./tree-state.js";
import type { KeyValueStore, RangeOptions, WriteOp } from "./types.js";

const toBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const toBytes = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** How each tag's keys are held: a number column (or two, for strata) or a bytea column. */
type Source =
  | {
      readonly kind: "u64";
      readonly table: string;
      readonly column: string;
      readonly value: string;
    }
  | { readonly kind: "tile" }
  | {
      readonly kind: "bytes";
      /** The FROM clause in schema `s`: a table, or the union that holds the keys. */
      readonly from: (s: string) => string;
      readonly column: string;
    };

const ENTRIES = (s: string) => `${s}.entries`;

/**
 * Idempotency keys are in two places (postgres.ts): an entry's own key in its row, other keys
 * (aliases, and every key of a log made before that) in idem_keys. The view is their union.
 */
const KEYS = (s: string) =>
  `(SELECT key_hash, idx FROM ${s}.entries WHERE key_hash IS NOT NULL
    UNION ALL SELECT key_hash, idx FROM ${s}.idem_keys) AS keys`;

const SOURCES: Record<number, Source> = {
  101: { kind: "u64", table: "entries", column: "idx", value: "leaf" }, // e
  99: { kind: "u64", table: "checkpoints", column: "size", value: "note" }, // c
  116: { kind: "tile" }, // t
  105: { kind: "bytes", from: ENTRIES, column: "id" }, // i
  104: { kind: "bytes", from: ENTRIES, column: "leaf_hash" }, // h
  112: { kind: "bytes", from: ENTRIES, column: "payload_hash" }, // p
  107: { kind: "bytes", from: KEYS, column: "key_hash" }, // k
};

/**
 * The smallest number a key of `width` body bytes can have and still be >= `bound` (a key of
 * this tag). Keys and bounds compare as bytes: a bound shorter than a key is padded with zeros (a
 * key equal to the padding is still above the shorter bound); a longer one (a successor, key ‖ 0)
 * puts the key with its first `width` bytes above it.
 */
function lowestAtOrAbove(
  bound: Uint8Array,
  tag: number,
  width: number,
): bigint | "below" | "above" {
  if (bound.length === 0 || (bound[0] as number) < tag) return "below";
  if ((bound[0] as number) > tag) return "above";
  let n = 0n;
  for (let i = 0; i < width; i++) n = (n << 8n) | BigInt(bound[1 + i] ?? 0);
  return bound.length > 1 + width ? n + 1n : n;
}

export class PostgresLayoutView implements KeyValueStore {
  readonly #client: pg.PoolClient;
  readonly #s: string;

  private constructor(client: pg.PoolClient, schema: string) {
    this.#client = client;
    this.#s = schema;
  }

  /** Opens a read-only snapshot of the log in `schema`; undefined when there is no such log. */
  static async open(pool: pg.Pool, schema: string): Promise<PostgresLayoutView | undefined> {
    const client = await pool.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const found = await client.query("SELECT to_regclass($1) AS t", [`${schema}.state`]);
      if (found.rows[0]?.t === null) {
        await client.query("ROLLBACK");
        client.release();
        return undefined;
      }
      return new PostgresLayoutView(client, schema);
    } catch (e) {
      client.release();
      throw e;
    }
  }

  async #rows<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.#client.query<R>(sql, params)).rows;
    } catch (e) {
      throw postgresFailure(e, `reading ${this.#s}`);
    }
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return (await this.getMany([key]))[0];
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    // The lookup keys (i, h, p, k) of a chunk: one query per tag. Anything else one by one.
    const out: (Uint8Array | undefined)[] = new Array(keys.length).fill(undefined);
    const byTag = new Map<number, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as Uint8Array;
      const source = SOURCES[key[0] as number];
      if (source?.kind === "bytes" && key.length > 1) {
        const list = byTag.get(key[0] as number) ?? [];
        list.push(i);
        byTag.set(key[0] as number, list);
      } else {
        out[i] = await this.#getOne(key);
      }
    }
    for (const [tag, positions] of byTag) {
      const source = SOURCES[tag] as Extract<Source, { kind: "bytes" }>;
      const wanted = positions.map((i) => toBuffer((keys[i] as Uint8Array).subarray(1)));
      const rows = await this.#rows<{ k: Buffer; idx: string }>(
        `SELECT ${source.column} AS k, idx FROM ${source.from(this.#s)} WHERE ${source.column} = ANY($1::bytea[])`,
        [wanted],
      );
      const found = new Map(rows.map((r) => [r.k.toString("hex"), Number(r.idx)]));
      positions.forEach((i, n) => {
        const idx = found.get((wanted[n] as Buffer).toString("hex"));
        out[i] = idx === undefined ? undefined : encodeIndex(idx);
      });
    }
    return out;
  }

  async #getOne(key: Uint8Array): Promise<Uint8Array | undefined> {
    const s = this.#s;
    // "l": the leaf-hash keys' layout. The view presents them as layout 1 (tag ‖ leaf hash),
    // which is what an absent "l" means.
    if (key.length === 1 && key[0] === 0x6c) return undefined;
    // "f": layout 2's era filters (era-filter.ts), which layout 1 has none of.
    if (key[0] === 0x66) return undefined;
    // "m": a move to layout 3 under way (kv-log-migrate.ts), which only embedded logs make.
    if (key.length === 1 && key[0] === 0x6d) return undefined;
    if (key.length === 1 && (key[0] === 0x73 || key[0] === 0x64)) {
      const [row] = await this.#rows<{ size: string; compact: Buffer[]; dedup: string }>(
        `SELECT size, compact, dedup FROM ${s}.state`,
      );
      if (row === undefined) return undefined;
      return key[0] === 0x64
        ? utf8Encode(row.dedup)
        : encodeState({ size: Number(row.size), compact: row.compact.map(toBytes) });
    }
    const rows = await this.range({ gte: key, lt: new Uint8Array([...key, 0]), limit: 1 });
    return rows[0]?.[1];
  }

  async range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    const tag = options.gte[0];
    const source = tag === undefined ? undefined : SOURCES[tag];
    if (tag === undefined || source === undefined || (options.lt[0] ?? 0) > tag + 1) {
      throw new VellumError("MALFORMED", "a range over the PostgreSQL view must stay in one tag");
    }
    const order = options.reverse === true ? "DESC" : "ASC";
    const limit = options.limit === undefined ? "" : `LIMIT ${Math.max(0, options.limit | 0)}`;
    const s = this.#s;
    if (source.kind === "u64" || source.kind === "tile") {
      const width = source.kind === "u64" ? 8 : 9;
      const lo = lowestAtOrAbove(options.gte, tag, width);
      const hi = lowestAtOrAbove(options.lt, tag, width);
      if (lo === "above" || hi === "below") return [];
      const from = lo === "below" ? 0n : lo;
      const split = (n: bigint) => [Number(n >> 64n), (n & 0xffffffffffffffffn).toString()];
      if (source.kind === "u64") {
        const where = hi === "above" ? "" : `AND ${source.column} < $2::numeric`;
        const rows = await this.#rows<{ k: string; v: Buffer | string }>(
          `SELECT ${source.column} AS k, ${source.value} AS v FROM ${s}.${source.table}
           WHERE ${source.column} >= $1::numeric ${where} ORDER BY ${source.column} ${order} ${limit}`,
          hi === "above" ? [from.toString()] : [from.toString(), hi.toString()],
        );
        return rows.map((r) => {
          const key = entryKey(Number(r.k)); // the layout's u64 key; then this tag
          key[0] = tag;
          return [key, typeof r.v === "string" ? utf8Encode(r.v) : toBytes(r.v)];
        });
      }
      const [fromLevel, fromIdx] = split(from);
      const params: unknown[] = [fromLevel, fromIdx];
      let where = "(level, idx) >= ($1::int, $2::numeric)";
      if (hi !== "above") {
        const [toLevel, toIdx] = split(hi);
        params.push(toLevel, toIdx);
        where += " AND (level, idx) < ($3::int, $4::numeric)";
      }
      const rows = await this.#rows<{ level: number; idx: string; bytes: Buffer }>(
        `SELECT level, idx, bytes FROM ${s}.strata WHERE ${where}
         ORDER BY level ${order}, idx ${order} ${limit}`,
        params,
      );
      return rows.map((r) => {
        const key = new Uint8Array(10);
        key[0] = tag;
        key[1] = r.level;
        new DataView(key.buffer).setBigUint64(2, BigInt(r.idx));
        return [key, toBytes(r.bytes)];
      });
    }
    // Bytes columns compare as PostgreSQL compares bytea: bytewise, then by length — the key
    // order of the embedded store.
    const params: unknown[] = [];
    const conditions = [`${source.column} IS NOT NULL`];
    const gteBody = options.gte.subarray(1);
    if (gteBody.length > 0) {
      params.push(toBuffer(gteBody));
      conditions.push(`${source.column} >= $${params.length}`);
    }
    if (options.lt[0] === tag) {
      params.push(toBuffer(options.lt.subarray(1)));
      conditions.push(`${source.column} < $${params.length}`);
    } else if ((options.lt[0] ?? 0) < tag) {
      return [];
    }
    const rows = await this.#rows<{ k: Buffer; idx: string }>(
      `SELECT ${source.column} AS k, idx FROM ${source.from(this.#s)} WHERE ${conditions.join(" AND ")}
       ORDER BY ${source.column} ${order} ${limit}`,
      params,
    );
    return rows.map((r) => {
      const key = new Uint8Array(1 + r.k.length);
      key[0] = tag;
      key.set(r.k, 1);
      return [key, encodeIndex(Number(r.idx))];
    });
  }

  write(_ops: readonly WriteOp[]): Promise<void> {
    return Promise.reject(new VellumError("STORAGE_FAILURE", "the PostgreSQL view is read only"));
  }

  async recover(): Promise<void> {}

  /** Ends the snapshot (nothing was written) and returns the connection. */
  async close(): Promise<void> {
    try {
      await this.#client.query("ROLLBACK");
    } finally {
      this.#client.release();
    }
  }
}
