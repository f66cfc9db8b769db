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
 * One writer per log set: the server holding the writer lease (postgres-lease.ts) in
 * `<base>_kv.lease`. Another `vellum serve` on the same database and origin stands by until the
 * lease is free — the writer stopped, was killed, or paused for longer than the lease — then
 * takes over with a higher fence. Every write of the logs' stores checks the fence in its own
 * transaction, so a writer that wakes up after losing the lease writes nothing, and says so and
 * stops.
 */
import { hostname } from "node:os";
import pg from "pg";
import { hexEncode, utf8Encode } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { VellumError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { LogStore } from "../storage/log-store.js";
import { PostgresLogStore } from "../storage/postgres.js";
import { postgresFailure } from "../storage/postgres-errors.js";
import { PostgresDatabase } from "../storage/postgres-kv.js";
import { WriterLease } from "../storage/postgres-lease.js";
import type { Database, KeyValueStore } from "../storage/types.js";
import { openEmbeddedDatabases } from "./embedded-db.js";

/**
 * What a Log is opened over: a key-value namespace (with its namespace in the entries database,
 * embedded-db.ts), or a store of its own.
 */
export type LogPlace =
  | { readonly kv: KeyValueStore; readonly entries?: KeyValueStore }
  | { readonly store: LogStore };

export interface ServerStore {
  /** Where this server, now the writer, answers (PostgreSQL: standbys forward there). */
  advertise(url: string): Promise<void>;
  /** The port a standby front end listened on, to keep once this server is the writer. */
  readonly standbyPort: number | undefined;
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

/** How long the writer lease lasts without renewal: a standby takes over within about this. */
export const LEASE_MS = 3000;

/** Takes the writer lease, standing by until it is free (a writer that stops renewing it). */
async function takeLease(
  lease: WriterLease,
  origin: string,
  where: string,
  logger: Logger,
  standBy: StandBy | undefined,
): Promise<number | undefined> {
  if ((await lease.tryAcquire()) !== undefined) return undefined;
  const now = await lease.current();
  logger.warn(
    `standing by: "${now.holder}" is the writer of "${origin}" in ${where} (its lease ends in ${Math.max(0, Math.round(now.expiresInMs))} ms unless renewed); this server takes over when it is not`,
  );
  const frontEnd = await standBy?.(async () => (await lease.current()).url);
  const poll = Math.max(50, Math.floor(lease.ttlMs / 6));
  for (;;) {
    await new Promise((r) => setTimeout(r, poll));
    try {
      if ((await lease.tryAcquire()) !== undefined) break;
    } catch (e) {
      logger.error(`standing by: ${(e as Error).message}`);
    }
  }
  const port = await frontEnd?.();
  logger.warn(`took over as the writer of "${origin}" (fence ${lease.fence}) from "${now.holder}"`);
  return port;
}

/**
 * Starts a standing-by front end (standby-proxy.ts) given how to find the writer; resolves with
 * the function that stops it and says which port it had.
 */
export type StandBy = (
  writerUrl: () => Promise<string | undefined>,
) => Promise<() => Promise<number>>;

/**
 * Renews the lease three times per period, one renewal at a time. When it is lost (another
 * server took over: this one was paused or cut off for longer than the lease), or has not been
 * renewed for a whole period — a renewal that failed, or one that never answered (a partition)
 * — `onLost` says so: the caller stops. Its writes would be refused anyway (the fence).
 */
function keepLease(
  lease: WriterLease,
  logger: Logger,
  onLost: ((why: string) => void) | undefined,
): NodeJS.Timeout {
  // When the last renewal that succeeded was sent: the lease runs ttl from when the database
  // ran it, which is no earlier, so counting from the send errs on the safe side.
  let renewedAt = Date.now();
  let inFlight = false;
  let lost = false;
  const lose = (why: string) => {
    lost = true;
    onLost?.(why);
  };
  const timer = setInterval(
    () => {
      if (lost) return;
      const overdue = () => Date.now() - renewedAt > lease.ttlMs;
      if (inFlight) {
        // A renewal that does not answer within the lease: cut off (a partition).
        if (overdue()) {
          lose(
            `could not renew the writer lease for ${lease.ttlMs} ms: the database did not answer`,
          );
        }
        return;
      }
      inFlight = true;
      const fence = lease.fence;
      const sentAt = Date.now();
      lease.renew().then(
        (ok) => {
          inFlight = false;
          if (lost) return;
          if (ok) {
            renewedAt = sentAt;
            return;
          }
          lose(
            `lost the writer lease (fence ${fence}): another server took over while this one was paused or cut off`,
          );
        },
        (e: Error) => {
          inFlight = false;
          if (lost) return;
          logger.error(`renewing the writer lease: ${e.message}`);
          if (overdue())
            lose(`could not renew the writer lease for ${lease.ttlMs} ms: ${e.message}`);
        },
      );
    },
    Math.max(20, Math.floor(lease.ttlMs / 3)),
  );
  timer.unref();
  return timer;
}

export async function openServerStore(options: {
  readonly dbPath: string;
  /** DATA/entries (embedded-db.ts); with PostgreSQL, unused. */
  readonly entriesPath: string;
  readonly url: string | undefined;
  readonly origin: string;
  readonly logger: Logger;
  /** The writer lease's period (default LEASE_MS). */
  readonly leaseMs?: number;
  /** Called once if this server loses the writer lease (PostgreSQL only). */
  readonly onLeaseLost?: (why: string) => void;
  /** While another server is the writer: answer as its front end (PostgreSQL only). */
  readonly standBy?: StandBy;
}): Promise<ServerStore> {
  if (options.url === undefined) {
    const embedded = await openEmbeddedDatabases(options);
    return {
      db: embedded.db,
      logPlace: async (name) => embedded.place(name),
      advertise: async () => undefined,
      standbyPort: undefined,
      description: `LevelDB in ${options.dbPath} (leaves in ${options.entriesPath})`,
      close: () => embedded.close(),
    };
  }
  const description = describePostgresUrl(options.url);
  const { logger } = options;
  const leaseMs = options.leaseMs ?? LEASE_MS;
  // Bounded waits: a database cut off by a partition (packets dropped, nothing refused) must
  // fail calls, not hang them — a hung commit would hold the write lock with nothing said and
  // /readyz still ready. The server also ends a transaction whose client has vanished, which
  // would otherwise keep the lease row locked (and every standby out) until TCP gives up.
  const pool = new pg.Pool({
    connectionString: options.url,
    max: 16,
    connectionTimeoutMillis: leaseMs,
    query_timeout: 2 * leaseMs,
    statement_timeout: 2 * leaseMs,
    idle_in_transaction_session_timeout: 2 * leaseMs,
    keepAlive: true,
  });
  // An idle connection that breaks is reported here (unhandled, it would end the process);
  // the next query opens a new one.
  pool.on("error", (e) => logger.error(`${description}: an idle connection failed: ${e.message}`));
  const base = schemaBase(options.origin);
  try {
    const db = await PostgresDatabase.open(pool, `${base}_kv`);
    const lease = await WriterLease.open(
      pool,
      `${base}_kv`,
      `${hostname()} pid ${process.pid}`,
      leaseMs,
    );
    const standbyPort = await takeLease(
      lease,
      options.origin,
      description,
      logger,
      options.standBy,
    );
    const renewal = keepLease(lease, logger, options.onLeaseLost);
    const fence = { table: lease.table, value: () => lease.fence };
    return {
      db,
      advertise: (url) => lease.advertise(url),
      standbyPort,
      logPlace: async (name) => ({
        store: await PostgresLogStore.open({
          pool,
          schema: `${base}_${name.replace(/-/g, "_")}`,
          fence,
        }),
      }),
      description: `${description} (schemas ${base}_*), the writer with fence ${lease.fence}`,
      async close() {
        clearInterval(renewal);
        await db.close();
        await lease.release();
        await pool.end();
      },
    };
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw postgresFailure(e, "opening", description);
  }
}
