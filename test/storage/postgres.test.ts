/**
 * The PostgreSQL stores against a real PostgreSQL (`scripts/services.sh up postgres`): the
 * key-value contract every driver passes and the LogStore contract every log store passes; the log engine on it end to end (receipts that verify
 * offline, dedup, a restart that carries on the same tree); the tree state's compare-and-swap
 * (two writers, one tree per size); and the append-only triggers.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { isVellumError } from "../../src/core/errors.js";
import { Log } from "../../src/log/log.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import { PostgresLogStore } from "../../src/storage/postgres.js";
import { PostgresDatabase } from "../../src/storage/postgres-kv.js";
import { WriterLease } from "../../src/storage/postgres-lease.js";
import { needService } from "../helpers/services.js";
import { checkConsistentHistory, checkReceipt, ORIGIN, payloadOf, SEED } from "../log/helpers.js";
import { runKeyValueContract } from "./contract.js";
import { describeLogStore } from "./log-store-contract.js";

const env = needService("postgres", ["VELLUM_PG_URL"]);
const pool = env === undefined ? undefined : new pg.Pool({ connectionString: env.VELLUM_PG_URL });
afterAll(async () => {
  await pool?.end();
});
const freshSchema = () => `test_${randomBytes(6).toString("hex")}`;
const dropSchema = (schema: string) => pool!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);

/** The engine on a PostgreSQL log in `schema` (a batch at once, no idle re-signing). */
async function openPgLog(schema: string, extra: { dedup?: "key" | "payload" } = {}) {
  return Log.open({
    origin: ORIGIN,
    seed: SEED,
    store: await PostgresLogStore.open({ pool: pool!, schema }),
    checkpointIntervalMs: 0,
    batchMaxAgeMs: 0,
    ...extra,
  });
}

if (env !== undefined) {
  runKeyValueContract("PostgresDatabase", async () => {
    const schema = freshSchema();
    return {
      db: await PostgresDatabase.open(pool!, schema),
      cleanup: async () => {
        await dropSchema(schema);
      },
    };
  });
  describeLogStore("PostgresLogStore", async () => {
    const schema = freshSchema();
    return {
      store: await PostgresLogStore.open({ pool: pool!, schema }),
      reopen: () => PostgresLogStore.open({ pool: pool!, schema }),
      cleanup: async () => {
        await dropSchema(schema);
      },
    };
  });
}

describe.skipIf(env === undefined)("the log on PostgreSQL", () => {
  it("acknowledges entries with receipts that verify, dedups, and restarts on the same tree", async () => {
    const schema = freshSchema();
    try {
      const open = () => openPgLog(schema, { dedup: "payload" });
      const checkpoints: Awaited<ReturnType<typeof open>>["checkpoint"][] = [];
      let log = await open();
      const payloads = Array.from({ length: 600 }, (_, i) => payloadOf(i));
      const receipts = await log.submitMany(payloads);
      checkpoints.push(log.checkpoint);
      for (const i of [0, 255, 256, 599]) await checkReceipt(log, receipts[i]!, payloads[i]!);
      // A payload already in the log returns the original entry.
      const again = await log.submit(payloads[7]!);
      expect(again.index).toBe(7);
      expect(log.size).toBe(600);
      await log.close();

      log = await open();
      expect(log.size).toBe(600);
      checkpoints.push(log.checkpoint);
      const more = await log.submitMany([payloadOf(1, "later"), payloadOf(2, "later")]);
      expect(more.map((r) => r.index)).toEqual([600, 601]);
      checkpoints.push(log.checkpoint);
      await checkConsistentHistory(log, checkpoints);
      expect(new TextDecoder().decode((await log.entry(599)).payload)).toBe("entry 599");
      await log.close();
    } finally {
      await dropSchema(schema);
    }
  });

  it("stores one tree per size: a second writer's batch from a stale size is refused whole", async () => {
    const schema = freshSchema();
    try {
      const a = await PostgresLogStore.open({ pool: pool!, schema });
      const b = await PostgresLogStore.open({ pool: pool!, schema });
      await a.create("key", "checkpoint 0\n");
      const batch = (tag: string) => ({
        entries: EntryBatch.of([
          {
            index: 0,
            leaf: new TextEncoder().encode(`leaf ${tag}`),
            id: randomBytes(16),
            leafHash: randomBytes(32),
          },
        ]),
        keyAliases: [],
        strata: [{ level: 0, index: 0, bytes: new TextEncoder().encode(tag) }],
        state: { size: 1, compact: [randomBytes(32)] },
        checkpoint: { size: 1, note: `checkpoint 1 by ${tag}\n` },
      });
      // Both writers race from size 0: exactly one wins.
      const outcomes = await Promise.allSettled([a.commit(batch("a")), b.commit(batch("b"))]);
      const won = outcomes.filter((o) => o.status === "fulfilled");
      const lost = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
      expect(won.length).toBe(1);
      expect(lost.length).toBe(1);
      expect(isVellumError(lost[0]!.reason, "STATE_MISMATCH")).toBe(true);
      // Nothing of the losing batch is stored: one entry, one checkpoint, one stratum.
      const winner = outcomes[0]!.status === "fulfilled" ? "a" : "b";
      expect(await a.checkpoint(1)).toBe(`checkpoint 1 by ${winner}\n`);
      expect((await a.leafRange(0, 10)).length).toBe(1);
      expect(new TextDecoder().decode(await a.stratum(0, 0))).toBe(winner);
    } finally {
      await dropSchema(schema);
    }
  });

  it("fences a writer that lost its lease: its writes are refused whole, the new writer's land", async () => {
    const schema = freshSchema();
    try {
      await pool!.query(`CREATE SCHEMA ${schema}`);
      const a = await WriterLease.open(pool!, schema, "server a", 300);
      const b = await WriterLease.open(pool!, schema, "server b", 300);
      expect(await a.tryAcquire()).toBe(1);
      expect(await b.tryAcquire()).toBeUndefined(); // held, not expired
      expect((await b.current()).holder).toBe("server a");
      const storeOf = async (lease: WriterLease) =>
        PostgresLogStore.open({
          pool: pool!,
          schema: `${schema}_log`,
          fence: { table: lease.table, value: () => lease.fence },
        });
      const storeA = await storeOf(a);
      await storeA.create("key", "checkpoint 0\n");
      const entryBatch = (index: number, tag: string) => ({
        entries: EntryBatch.of([
          {
            index,
            leaf: new TextEncoder().encode(`leaf ${tag}`),
            id: randomBytes(16),
            leafHash: randomBytes(32),
          },
        ]),
        keyAliases: [],
        strata: [],
        state: { size: index + 1, compact: [randomBytes(32)] },
        checkpoint: { size: index + 1, note: `checkpoint ${index + 1} by ${tag}\n` },
      });
      await storeA.commit(entryBatch(0, "a"));
      expect(await a.renew()).toBe(true);
      // a stops renewing (paused); once the lease has run out, b takes over with fence 2.
      await new Promise((r) => setTimeout(r, 400));
      expect(await b.tryAcquire()).toBe(2);
      const storeB = await storeOf(b);
      // a wakes up: its batch from the right size is still refused, and so is a re-signed note.
      const late = await storeA.commit(entryBatch(1, "a")).catch((e) => e);
      expect(isVellumError(late, "STATE_MISMATCH")).toBe(true);
      expect(late.message).toMatch(/no longer holds the writer lease \(fence 2, its own 1\)/);
      await expect(storeA.putCheckpoint(1, "re-signed by a\n")).rejects.toThrow(/writer lease/);
      expect(await a.renew()).toBe(false);
      await storeB.commit(entryBatch(1, "b"));
      expect(await storeB.checkpoint(2)).toBe("checkpoint 2 by b\n");
      expect(await storeB.checkpoint(1)).toBe("checkpoint 1 by a\n");
      // A clean stop gives the lease up at once.
      await b.release();
      expect(await a.tryAcquire()).toBe(3);
    } finally {
      await dropSchema(schema);
      await dropSchema(`${schema}_log`);
    }
  });

  it("refuses UPDATE, DELETE and TRUNCATE of entries and idempotency keys", async () => {
    const schema = freshSchema();
    try {
      const log = await openPgLog(schema, { dedup: "payload" });
      await log.submit(payloadOf(1), { idempotencyKey: "k1" });
      // The same payload under another key: an alias, in idem_keys.
      expect((await log.submit(payloadOf(1), { idempotencyKey: "k2" })).duplicate).toBe(true);
      await log.close();
      expect(
        (await pool!.query(`SELECT count(*)::int AS n FROM ${schema}.idem_keys`)).rows[0].n,
      ).toBe(1);
      for (const sql of [
        `UPDATE ${schema}.entries SET leaf = '\\x00'`,
        `UPDATE ${schema}.entries SET key_hash = NULL`,
        `DELETE FROM ${schema}.entries`,
        `TRUNCATE ${schema}.entries`,
        `UPDATE ${schema}.idem_keys SET idx = 5`,
        `DELETE FROM ${schema}.idem_keys`,
      ]) {
        await expect(pool!.query(sql), sql).rejects.toThrow(/append-only/);
      }
      expect(
        (await pool!.query(`SELECT count(*)::int AS n FROM ${schema}.entries`)).rows[0].n,
      ).toBe(1);
    } finally {
      await dropSchema(schema);
    }
  });

  it("finds the keys of a log made before keys moved into the entries' rows (idem_keys only)", async () => {
    const schema = freshSchema();
    try {
      const open = () => openPgLog(schema);
      let log = await open();
      const first = await log.submit(payloadOf(1), { idempotencyKey: "old-key" });
      await log.submit(payloadOf(2), { idempotencyKey: "new-key" });
      await log.close();
      // The older layout: the key in idem_keys, none in the entry's row, and no key_hash column.
      const c = await pool!.connect();
      try {
        await c.query("BEGIN");
        await c.query("SET LOCAL session_replication_role = replica"); // triggers off
        await c.query(
          `INSERT INTO ${schema}.idem_keys (key_hash, idx) SELECT key_hash, idx FROM ${schema}.entries WHERE idx = 0`,
        );
        await c.query(`UPDATE ${schema}.entries SET key_hash = NULL WHERE idx = 0`);
        await c.query("COMMIT");
      } finally {
        c.release();
      }
      log = await open(); // the column is there already: opening leaves it and the keys alone
      expect(await log.submit(payloadOf(1), { idempotencyKey: "old-key" })).toMatchObject({
        index: first.index,
        duplicate: true,
      });
      expect((await log.submit(payloadOf(2), { idempotencyKey: "new-key" })).index).toBe(1);
      const conflict = await log
        .submit(payloadOf(3), { idempotencyKey: "old-key" })
        .catch((e: unknown) => e);
      expect(isVellumError(conflict, "CONFLICT")).toBe(true);
      expect(log.checkpoint.checkpoint.size).toBe(2);
      await log.close();
    } finally {
      await dropSchema(schema);
    }
  });

  it("adds the key column to a log made before it, and keeps its keys", async () => {
    const schema = freshSchema();
    try {
      const store = await PostgresLogStore.open({ pool: pool!, schema });
      const log = await Log.open({ origin: ORIGIN, seed: SEED, store, batchMaxAgeMs: 0 });
      const first = await log.submit(payloadOf(1), { idempotencyKey: "k" });
      await log.close();
      // Back to the older schema: the key in idem_keys, the column dropped.
      await pool!.query(
        `INSERT INTO ${schema}.idem_keys (key_hash, idx) SELECT key_hash, idx FROM ${schema}.entries`,
      );
      await pool!.query(`ALTER TABLE ${schema}.entries DROP COLUMN key_hash`);
      const again = await Log.open({
        origin: ORIGIN,
        seed: SEED,
        store: await PostgresLogStore.open({ pool: pool!, schema }),
        batchMaxAgeMs: 0,
      });
      expect(await again.submit(payloadOf(1), { idempotencyKey: "k" })).toMatchObject({
        index: first.index,
        duplicate: true,
      });
      const fresh = await again.submit(payloadOf(2), { idempotencyKey: "k2" });
      expect(fresh.duplicate).toBe(false);
      await again.close();
      const rows = await pool!.query(
        `SELECT idx, key_hash IS NOT NULL AS keyed FROM ${schema}.entries ORDER BY idx`,
      );
      expect(rows.rows).toEqual([
        { idx: "0", keyed: false },
        { idx: "1", keyed: true },
      ]);
    } finally {
      await dropSchema(schema);
    }
  });

  it("refuses a schema name that is not a plain identifier", async () => {
    for (const bad of ["Upper", "a;drop", "1abc", "x".repeat(64), 'a"b']) {
      const e = await PostgresLogStore.open({ pool: pool!, schema: bad }).catch((err) => err);
      expect(isVellumError(e, "MALFORMED"), bad).toBe(true);
    }
  });
});
