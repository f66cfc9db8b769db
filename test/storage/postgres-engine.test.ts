/**
 * The log engine's behaviours that the embedded store is tested for (test/log/dedup.test.ts,
 * guards.test.ts, ids), run on the PostgreSQL store against a real PostgreSQL: dedup by key and
 * by payload (in flight, stored, across a restart; a key reused for other bytes is CONFLICT), the
 * start-up guards (another key, another origin, a rolled-back or emptied store under a published
 * checkpoint, a clock behind), and timestamps that never decrease across a restart.
 */
import { describe, expect, it } from "vitest";
import { isVellumError } from "../../src/core/errors.js";
import type { Log, LogConfig } from "../../src/log/log.js";
import { pgTest } from "../helpers/postgres.js";
import { checkReceipt, payloadOf } from "../log/helpers.js";

const pgt = pgTest();
const pool = pgt?.pool;
const freshSchema = () => pgt!.freshSchema("engine");
const open = (schema: string, config: Partial<LogConfig> = {}) => pgt!.openLog(schema, config);

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = await p.then(
    (log) => {
      void (log as Log).close();
      return undefined;
    },
    (err: unknown) => err,
  );
  if (!isVellumError(e)) throw new Error(`expected a refusal, got ${String(e)}`);
  return e;
}

const login = new TextEncoder().encode('{"user":"bob","action":"login"}');

describe.skipIf(pgt === undefined)("the engine on PostgreSQL", () => {
  it("dedups by idempotency key: in flight, stored, after a restart; other bytes are CONFLICT", async () => {
    const schema = freshSchema();
    let log = await open(schema);
    expect(log.dedup).toBe("key");
    const plain = await Promise.all([log.submit(login), log.submit(login)]);
    expect(plain.map((r) => r.index)).toEqual([0, 1]);
    const [a, b] = await Promise.all([
      log.submit(login, { idempotencyKey: "evt-1" }),
      log.submit(login, { idempotencyKey: "evt-1" }),
    ]);
    expect(b.index).toBe(a.index);
    expect([a.duplicate, b.duplicate]).toEqual([false, true]);
    await log.close();
    log = await open(schema);
    expect(await log.submit(login, { idempotencyKey: "evt-1" })).toMatchObject({
      index: a.index,
      duplicate: true,
    });
    const conflict = await log.submit(payloadOf(9), { idempotencyKey: "evt-1" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVellumError(conflict, "CONFLICT")).toBe(true);
    for (const r of [...plain, a]) await checkReceipt(log, r, login);
    await log.close();
  });

  it("dedups by payload where the log asks for it, across a restart", async () => {
    const schema = freshSchema();
    let log = await open(schema, { dedup: "payload" });
    const first = await log.submit(login);
    expect((await log.submit(login)).duplicate).toBe(true);
    await log.close();
    log = await open(schema); // the stored rule holds
    expect(log.dedup).toBe("payload");
    expect(await log.submit(login)).toMatchObject({ index: first.index, duplicate: true });
    await log.close();
  });

  it("refuses another key and another origin on the same storage", async () => {
    const schema = freshSchema();
    const log = await open(schema);
    await log.submitMany([payloadOf(1), payloadOf(2)]);
    await log.close();
    const key = await refusal(open(schema, { seed: new Uint8Array(32).fill(7) }));
    expect(key.code).toBe("STATE_MISMATCH");
    expect(key.message).toMatch(/not signed by this key/);
    const origin = await refusal(open(schema, { origin: "other.example/log" }));
    expect(origin.code).toBe("STATE_MISMATCH");
  });

  it("refuses a store behind a published checkpoint, and an emptied one", async () => {
    const schema = freshSchema();
    const log = await open(schema);
    await log.submitMany([payloadOf(1), payloadOf(2)]);
    // A backup of the database at size 2 (each table copied aside)…
    const tables = ["entries", "idem_keys", "strata", "state", "checkpoints"];
    const backup = freshSchema();
    await pool!.query(`CREATE SCHEMA ${backup}`);
    for (const t of tables)
      await pool!.query(`CREATE TABLE ${backup}.${t} AS TABLE ${schema}.${t}`);
    await log.submit(payloadOf(3));
    const published = log.checkpoint.note;
    await log.close();
    // An empty database (a restore that lost everything) under that published checkpoint.
    const empty = await refusal(open(freshSchema(), { lastPublished: published }));
    expect(empty.code).toBe("STATE_MISMATCH");
    expect(empty.message).toMatch(/data is missing/);
    // …restored over it (by a superuser, who can set the append-only triggers aside).
    for (const t of tables) {
      await pool!.query(`ALTER TABLE ${schema}.${t} DISABLE TRIGGER USER`);
      await pool!.query(`DELETE FROM ${schema}.${t}`);
      await pool!.query(`INSERT INTO ${schema}.${t} SELECT * FROM ${backup}.${t}`);
    }
    const behind = await refusal(open(schema, { lastPublished: published }));
    expect(behind.code).toBe("STATE_MISMATCH");
    expect(behind.message).toMatch(/size 3 but storage holds only 2 entries/);
  });

  it("refuses a clock behind the last checkpoint; timestamps never go back across a restart", async () => {
    const schema = freshSchema();
    const now = Date.now();
    let log = await open(schema, { clock: () => now });
    const before = await log.submit(payloadOf(1));
    await log.close();
    const behind = await refusal(open(schema, { clock: () => now - 3_600_000 }));
    expect(behind.code).toBe("STATE_MISMATCH");
    expect(behind.message).toMatch(/clock .* behind/);
    log = await open(schema, { clock: () => now - 3_600_000, allowClockBehind: true });
    const after = await log.submit(payloadOf(2));
    expect(after.timestamp).toBeGreaterThanOrEqual(before.timestamp);
    await log.close();
  });
});
