/**
 * `vellum fsck` on a PostgreSQL log (src/storage/postgres-layout-view.ts, against a real
 * PostgreSQL): the view answers the checker's reads exactly as the embedded layout would, so a
 * log built the same way on both backends gets the same report; a change made behind the
 * server's back (as a superuser who disables the append-only triggers could) is found and named;
 * and the check reads one snapshot, so a writer appending meanwhile causes no false alarm.
 */
import { describe, expect, it } from "vitest";
import { type FsckReport, fsck } from "../../src/log/fsck.js";
import type { Log } from "../../src/log/log.js";
import { PostgresLayoutView } from "../../src/storage/postgres-layout-view.js";
import { pgTest } from "../helpers/postgres.js";
import { openMemoryLog, payloadOf } from "../log/helpers.js";

const pgt = pgTest();
const pool = pgt?.pool;

const SIZE = 600; // full tiles 0/0 and 0/1, partial 0/2 and 1/0
let verifierKey = "";

/** A log of SIZE entries (payload dedup: every lookup index exists), a third with keys. */
async function fill(log: Log): Promise<void> {
  for (let at = 0; at < SIZE; at += 100) {
    const batch = Array.from({ length: 100 }, (_, i) => payloadOf(at + i));
    await Promise.all(
      batch.map((p, i) => log.submit(p, i % 3 === 0 ? { idempotencyKey: `k${at + i}` } : {})),
    );
  }
}

async function pgLog(): Promise<{ schema: string; log: Log }> {
  const schema = pgt!.freshSchema("fsck");
  const log = await pgt!.openLog(schema, { dedup: "payload" });
  verifierKey = log.signer.verifierKey;
  return { schema, log };
}

async function check(schema: string): Promise<FsckReport> {
  const view = await PostgresLayoutView.open(pool!, schema);
  if (view === undefined) throw new Error(`no log in ${schema}`);
  try {
    return await fsck({ kv: view, verifierKey, chunk: 64 });
  } finally {
    await view.close();
  }
}

/** Runs SQL as the server's own role could not: with the append-only triggers off. */
async function behindTheBack(sql: string, params: unknown[] = []): Promise<void> {
  const c = await pool!.connect();
  try {
    await c.query("BEGIN");
    await c.query("SET LOCAL session_replication_role = replica"); // triggers do not fire
    await c.query(sql, params);
    await c.query("COMMIT");
  } finally {
    c.release();
  }
}

describe.skipIf(pgt === undefined)("vellum fsck on a PostgreSQL log", () => {
  it("reads a log as the embedded layout would: the same report as the same log in LevelDB's layout", async () => {
    const { schema, log } = await pgLog();
    await fill(log);
    await log.close();
    const onPg = await check(schema);
    expect(onPg.problems).toEqual([]);
    expect(onPg.clean).toBe(true);

    const mem = await openMemoryLog(undefined, { dedup: "payload" });
    await fill(mem.log);
    await mem.log.close();
    const inKv = await fsck({ kv: mem.db.namespace("log"), verifierKey, chunk: 64 });
    expect(inKv.clean).toBe(true);
    const shape = (r: FsckReport) => ({
      size: r.size,
      entries: r.entries,
      nodes: r.nodes,
      tiles: r.tiles,
      indexes: r.indexes,
    });
    expect(shape(onPg)).toEqual(shape(inKv));
    expect(onPg).toMatchObject({
      size: SIZE,
      entries: SIZE,
      indexes: { id: SIZE, leafHash: SIZE, payload: SIZE, idempotencyKey: (SIZE / 100) * 34 }, // i % 3 === 0 of each 100
    });
    expect(onPg.checkpoints).toBeGreaterThanOrEqual(SIZE / 100);
  });

  it("finds what was changed behind the server's back, each named", async () => {
    const { schema, log } = await pgLog();
    await fill(log);
    await log.close();
    // A leaf rewritten (entry 300), a stratum byte flipped (tile 0/0), a checkpoint replaced by
    // one for another size, an idempotency key pointed elsewhere, an entry stored beyond the tree.
    await behindTheBack(
      `UPDATE ${schema}.entries SET leaf = set_byte(leaf, length(leaf) - 1, get_byte(leaf, length(leaf) - 1) # 1) WHERE idx = 300`,
    );
    await behindTheBack(
      `UPDATE ${schema}.strata SET bytes = set_byte(bytes, 40, get_byte(bytes, 40) # 1) WHERE level = 0 AND idx = 0`,
    );
    await behindTheBack(
      `UPDATE ${schema}.checkpoints SET note = (SELECT note FROM ${schema}.checkpoints WHERE size = 100) WHERE size = 200`,
    );
    // Entry 3's key moved from its row to the alias table, pointing at 5000.
    await behindTheBack(
      `INSERT INTO ${schema}.idem_keys (key_hash, idx) SELECT key_hash, 5000 FROM ${schema}.entries WHERE idx = 3`,
    );
    await behindTheBack(`UPDATE ${schema}.entries SET key_hash = NULL WHERE idx = 3`);
    await behindTheBack(
      `INSERT INTO ${schema}.entries (idx, leaf, id, leaf_hash) VALUES (${SIZE + 5}, '\\x00', '\\x01', '\\x02')`,
    );
    const r = await check(schema);
    expect(r.clean).toBe(false);
    const messages = r.problems.map((p) => p.message).join("\n");
    expect(messages).toMatch(/entry 300\b/);
    expect(messages).toMatch(/tile 0\/0|stored node|level 0/);
    expect(messages).toMatch(/checkpoint stored under size 200 is for size 100/);
    expect(messages).toMatch(/idempotency-key index holds 1 key\(s\) pointing beyond the tree/);
    expect(messages).toMatch(new RegExp(`entry ${SIZE + 5} is stored beyond the tree's size`));
  });

  it("checks one snapshot: a writer appending meanwhile causes no false alarm", async () => {
    const { schema, log } = await pgLog();
    await fill(log);
    const view = await PostgresLayoutView.open(pool!, schema);
    // The snapshot starts with the first read; appends after it are not seen.
    const first = await fsck({ kv: view!, verifierKey, chunk: 16, maxProblems: 10 }).then(
      async (report) => {
        await view!.close();
        return report;
      },
    );
    expect(first.clean).toBe(true);
    const view2 = await PostgresLayoutView.open(pool!, schema);
    const during = fsck({ kv: view2!, verifierKey, chunk: 8 });
    await Promise.all(Array.from({ length: 300 }, (_, i) => log.submit(payloadOf(10_000 + i))));
    const report = await during;
    await view2!.close();
    expect(report.problems).toEqual([]);
    expect(report.size).toBeGreaterThanOrEqual(SIZE);
    await log.close();
    expect((await check(schema)).size).toBe(SIZE + 300);
  });

  it("says when there is no such log", async () => {
    expect(await PostgresLayoutView.open(pool!, "fsck_no_such_schema")).toBeUndefined();
  });
});
