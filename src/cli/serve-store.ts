/**
 * @module
 * Where `vellum serve` keeps its state (spec/storage.md): the embedded LevelDB in DATA/db (the
 * default, zero set-up), or PostgreSQL (`--store postgres://…`), where each log (the log, its
 * index log, its access log and that one's index log) has its own schema of tables
 * (PostgresLogStore) and everything else — tokens, the archive's progress — is in a key-value
 * table (PostgresDatabase), so a token works on every server of the database.
 *
 * Schemas are named after the log's origin: `vellum_`, the origin lower-cased with other
 * characters as `_` (at most 24), `_` and 8 hex digits of SHA-256(origin) (distinct origins never
 * share a schema), then the log's part: `vellum_vm_vellum_1a2b3c4d_log`, `…_index_log`,
 * `…_access_log`, `…_access_index_log`, `…_kv`.
 *
 * One writer per log: the process holds a session advisory lock on the log's schemas for as long
 * as it runs (a second `vellum serve` on the same database and origin is refused with LOCKED,
 * as a second one on one LevelDB is). Should that lock's connection drop, the tree state's
 * compare-and-swap still keeps two writers from storing two trees of one size.
 */
import pg from "pg";
import { hexEncode, utf8Encode } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { VellumError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { openLevelDatabase } from "../storage/level.js";
import type { LogStore } from "../storage/log-store.js";
import { PostgresLogStore } from "../storage/postgres.js";
import { PostgresDatabase } from "../storage/postgres-kv.js";
import type { Database, KeyValueStore } from "../storage/types.js";

/** What a Log is opened over: a key-value namespace, or a store of its own. */
export type LogPlace = { readonly kv: KeyValueStore } | { readonly store: LogStore };

export interface ServerStore {
  /** For everything but the logs: tokens, the archive's progress. */
  readonly db: Database;
  /** Where the log `name` ("log", "index-log", "access-log", "access-index-log") lives. */
  logPlace(name: string): Promise<LogPlace>;
  /** For the server's log: "LevelDB in …" or "PostgreSQL at host:port/db" (never a password). */
  readonly description: string;
  close(): Promise<void>;
}

export function schemaBase(origin: string): string {
  const slug = origin
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24);
  const hash = hexEncode(sha256(utf8Encode(origin))).slice(0, 8);
  // "vellum_" first: PostgreSQL reserves schema names that start with "pg_".
  return `vellum_${slug === "" ? "" : `${slug}_`}${hash}`;
}

/** Checks `url` is a PostgreSQL URL; the description never holds its password. */
export function describePostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new VellumError("MALFORMED", "--store must be a URL: postgres://USER@HOST:PORT/DATABASE");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new VellumError(
      "MALFORMED",
      `--store takes a postgres:// URL (the embedded LevelDB is the default without it), not ${parsed.protocol}//…`,
    );
  }
  return `PostgreSQL at ${parsed.host}${parsed.pathname}`;
}

export async function openServerStore(options: {
  readonly dbPath: string;
  readonly url: string | undefined;
  readonly origin: string;
  readonly logger: Logger;
}): Promise<ServerStore> {
  if (options.url === undefined) {
    const db = await openLevelDatabase(options.dbPath);
    return {
      db,
      logPlace: async (name) => ({ kv: db.namespace(name) }),
      description: `LevelDB in ${options.dbPath}`,
      close: () => db.close(),
    };
  }
  const description = describePostgresUrl(options.url);
  const { logger } = options;
  const pool = new pg.Pool({ connectionString: options.url, max: 16 });
  // An idle connection that breaks is reported here (unhandled, it would end the process);
  // the next query opens a new one.
  pool.on("error", (e) => logger.error(`${description}: an idle connection failed: ${e.message}`));
  const base = schemaBase(options.origin);
  let lock: pg.PoolClient | undefined;
  try {
    lock = await pool.connect();
    const got = await lock.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock(hashtext($1)) AS ok",
      [`vellum writer ${base}`],
    );
    if (got.rows[0]?.ok !== true) {
      throw new VellumError(
        "LOCKED",
        `another vellum serve is the writer of "${options.origin}" in ${description} (schemas ${base}_*)`,
      );
    }
    lock.on("error", (e) =>
      logger.error(
        `${description}: the connection holding the writer lock failed (${e.message}); the tree's compare-and-swap still refuses a second writer's batches`,
      ),
    );
    const db = await PostgresDatabase.open(pool, `${base}_kv`);
    const held = lock;
    return {
      db,
      logPlace: async (name) => ({
        store: await PostgresLogStore.open({ pool, schema: `${base}_${name.replace(/-/g, "_")}` }),
      }),
      description: `${description} (schemas ${base}_*)`,
      async close() {
        await db.close();
        held.release();
        await pool.end();
      },
    };
  } catch (e) {
    lock?.release();
    await pool.end().catch(() => undefined);
    if (e instanceof VellumError) throw e;
    const err = e as { message?: string; code?: string };
    throw new VellumError(
      "STORAGE_FAILURE",
      `${description}: ${err.message ?? String(e)}${err.code === undefined ? "" : ` (SQLSTATE ${err.code})`}`,
      { cause: e },
    );
  }
}
