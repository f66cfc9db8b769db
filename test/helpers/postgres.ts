/**
 * A real PostgreSQL for storage tests (scripts/services.sh up postgres): one pool per test file,
 * fresh schemas (dropped after the file), and the log engine opened on one.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll } from "vitest";
import { Log, type LogConfig } from "../../src/log/log.js";
import { PostgresLogStore } from "../../src/storage/postgres.js";
import { ORIGIN, SEED } from "../log/helpers.js";
import { needService } from "./services.js";

export interface PgTest {
  readonly pool: pg.Pool;
  /** A schema name no other test uses; dropped (with what is in it) after the file. */
  freshSchema(prefix: string): string;
  /** The engine on the PostgreSQL store in `schema` (batches at once, no idle re-signing). */
  openLog(schema: string, config?: Partial<LogConfig>): Promise<Log>;
}

/** Undefined (after saying how to start it) when PostgreSQL is not running; CI requires it. */
export function pgTest(): PgTest | undefined {
  const env = needService("postgres", ["VELLUM_PG_URL"]);
  if (env === undefined) return undefined;
  const pool = new pg.Pool({ connectionString: env.VELLUM_PG_URL });
  const schemas: string[] = [];
  afterAll(async () => {
    for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await pool.end();
  });
  return {
    pool,
    freshSchema(prefix) {
      const s = `${prefix}_${randomBytes(6).toString("hex")}`;
      schemas.push(s);
      return s;
    },
    async openLog(schema, config = {}) {
      return Log.open({
        origin: ORIGIN,
        seed: SEED,
        store: await PostgresLogStore.open({ pool, schema }),
        checkpointIntervalMs: 0,
        batchMaxAgeMs: 0,
        ...config,
      });
    },
  };
}
