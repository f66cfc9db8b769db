/**
 * Moving a log of layout 1 or 2 to layout 3 (src/storage/kv-log-migrate.ts), on a real log's
 * storage (memory driver): the result is the log it was, key for key, with its leaves in the
 * entries store (and a layout-1 log's leaf-hash keys under their eras: exactly what layout 2
 * writes); fsck finds it clean, the log opens, serves and proves its old entries and appends new
 * ones to the entries store. Cut off at every one of its writes (a write that fails, or that
 * lands and then fails), the log refuses to open until the migration is run again, and the run
 * again ends where the clean run ends, byte for byte.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { bytesEqual, hexEncode } from "../../src/core/bytes.js";
import { VellumError } from "../../src/core/errors.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { fsck } from "../../src/log/fsck.js";
import { Log } from "../../src/log/log.js";
import {
  decodeIndex,
  entryKey,
  LAYOUT_KEY,
  leafHashKeyV1,
  MIGRATION_KEY,
} from "../../src/storage/kv-log-layout.js";
import { migrateToEntriesStore } from "../../src/storage/kv-log-migrate.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { MemoryDatabase, type MemorySnapshot, type WriteFault } from "../../src/storage/memory.js";
import type { KeyValueStore, WriteOp } from "../../src/storage/types.js";
import { checkReceipt, ORIGIN, openMemoryLog, payloadOf, SEED } from "../log/helpers.js";

const SIZE = 601;
const CHUNK = 100;

/** Every key and value of a namespace, as hex, in key order. */
async function dump(kv: KeyValueStore): Promise<string[]> {
  const rows = await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) });
  return rows.map(([k, v]) => `${hexEncode(k)}=${hexEncode(v)}`);
}

/** A layout-2 log's storage made into what layout 1 stored: no layout key, plain leaf-hash keys. */
async function asLayout1(kv: KeyValueStore): Promise<void> {
  const hashes = await kv.range({ gte: Uint8Array.of(0x68), lt: Uint8Array.of(0x69) });
  const ops: WriteOp[] = [{ type: "del", key: LAYOUT_KEY }];
  for (const [key, value] of hashes) {
    ops.push({ type: "del", key }, { type: "put", key: leafHashKeyV1(key.subarray(5)), value });
  }
  await kv.write(ops);
}

let layout2: MemorySnapshot;
let layout1: MemorySnapshot;
let verifierKey: string;

beforeAll(async () => {
  // Payload dedup and a keyed entry: every kind of lookup key is there to be kept.
  const { log, db } = await openMemoryLog(undefined, { dedup: "payload" });
  for (let at = 0; at < SIZE - 1; at += 100) {
    await log.submitMany(Array.from({ length: 100 }, (_, i) => payloadOf(at + i)));
  }
  await log.submit(payloadOf(0, "keyed"), { idempotencyKey: "k1" });
  verifierKey = log.signer.verifierKey;
  await log.close();
  expect(await db.namespace("log").get(LAYOUT_KEY)).toEqual(Uint8Array.of(2));
  layout2 = db.snapshot();
  const old = MemoryDatabase.fromSnapshot(layout2);
  await asLayout1(old.namespace("log"));
  layout1 = old.snapshot();
});

/** The log's two databases, from a snapshot of its own and an empty (or given) entries store. */
function open(snapshot: MemorySnapshot, entriesSnapshot?: MemorySnapshot) {
  const db = MemoryDatabase.fromSnapshot(snapshot);
  const entries =
    entriesSnapshot === undefined
      ? new MemoryDatabase()
      : MemoryDatabase.fromSnapshot(entriesSnapshot);
  return { db, entries, kv: db.namespace("log"), leafKv: entries.namespace("log") };
}

/** What a clean migration of a snapshot ends with: both namespaces, dumped. */
async function migrated(snapshot: MemorySnapshot) {
  const { kv, leafKv } = open(snapshot);
  const report = await migrateToEntriesStore(kv, leafKv, { chunk: CHUNK });
  return { report, kv: await dump(kv), entries: await dump(leafKv) };
}

describe("migrateToEntriesStore", () => {
  it("moves a layout-2 log's leaves to the entries store and changes nothing else", async () => {
    const before = open(layout2);
    const leaves = (await dump(before.kv)).filter((row) => row.startsWith("65"));
    expect(leaves).toHaveLength(SIZE);
    const progress: number[] = [];
    const { kv, leafKv } = open(layout2);
    const report = await migrateToEntriesStore(kv, leafKv, {
      chunk: CHUNK,
      onProgress: (p) => progress.push(p.done),
    });
    expect(report).toEqual({
      from: 2,
      size: SIZE,
      leavesMoved: SIZE,
      leafHashesRekeyed: 0,
      resumed: false,
    });
    expect(progress).toEqual([100, 200, 300, 400, 500, 600, 601]);
    expect(await dump(leafKv)).toEqual(leaves);
    // The rest is as it was, but for the layout key.
    const rest = (await dump(before.kv)).filter((row) => !row.startsWith("65"));
    expect(await dump(kv)).toEqual(rest.map((row) => (row.startsWith("6c=") ? "6c=03" : row)));
    expect(await kv.get(MIGRATION_KEY)).toBeUndefined();
    // Again: nothing to do.
    expect(await migrateToEntriesStore(kv, leafKv)).toMatchObject({ from: 3, leavesMoved: 0 });
  });

  it("ends a layout-1 log exactly where it ends a layout-2 log: the leaf-hash keys under their eras", async () => {
    const two = await migrated(layout2);
    const one = await migrated(layout1);
    expect(one.report).toEqual({
      from: 1,
      size: SIZE,
      leavesMoved: SIZE,
      leafHashesRekeyed: SIZE,
      resumed: false,
    });
    expect(one.kv).toEqual(two.kv);
    expect(one.entries).toEqual(two.entries);
  });

  it("leaves a log that fsck finds clean, that opens, proves its old entries and appends to the entries store", async () => {
    for (const snapshot of [layout1, layout2]) {
      const { kv, leafKv } = open(snapshot);
      await migrateToEntriesStore(kv, leafKv, { chunk: CHUNK });
      const report = await fsck({ kv, entries: leafKv, verifierKey });
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ clean: true, size: SIZE, entries: SIZE });
      const log = await Log.open({
        origin: ORIGIN,
        seed: SEED,
        kv,
        entries: leafKv,
        checkpointIntervalMs: 0,
      });
      try {
        expect(log.size).toBe(SIZE);
        const old = await log.entry(123);
        expect(old.payload).toEqual(payloadOf(123));
        const found = await log.receipt(123);
        await checkReceipt(log, found, payloadOf(123));
        // Dedup still finds what is stored: the same payload is the same entry.
        expect((await log.submit(payloadOf(7))).index).toBe(7);
        const fresh = await log.submit(payloadOf(1, "after"));
        expect(fresh.index).toBe(SIZE);
        await checkReceipt(log, fresh, payloadOf(1, "after"));
        expect(await leafKv.get(entryKey(SIZE))).toBeDefined();
        expect(await kv.get(entryKey(SIZE))).toBeUndefined();
      } finally {
        await log.close();
      }
      expect((await fsck({ kv, entries: leafKv, verifierKey })).clean).toBe(true);
    }
  });

  it("refuses a layout it does not know, and does nothing where there is no log", async () => {
    const { kv, leafKv } = open(layout2);
    await kv.write([{ type: "put", key: LAYOUT_KEY, value: Uint8Array.of(9) }]);
    await expect(migrateToEntriesStore(kv, leafKv)).rejects.toMatchObject({
      code: "STATE_MISMATCH",
    });
    expect(await dump(leafKv)).toEqual([]);
    const empty = new MemoryDatabase();
    expect(
      await migrateToEntriesStore(empty.namespace("log"), new MemoryDatabase().namespace("log")),
    ).toBeUndefined();
    expect(await dump(empty.namespace("log"))).toEqual([]);
  });

  for (const [name, snapshot] of [
    ["layout 1", () => layout1],
    ["layout 2", () => layout2],
  ] as const) {
    it(`${name}: cut off at any write, the log does not open until it is run again, which ends as a clean run does`, async () => {
      const clean = await migrated(snapshot());
      // How many writes a clean run makes, over both databases.
      const counted = open(snapshot());
      let writes = 0;
      const count = () => {
        writes++;
        return "ok" as const;
      };
      counted.db.faults = { write: count };
      counted.entries.faults = { write: count };
      await migrateToEntriesStore(counted.kv, counted.leafKv, { chunk: CHUNK });
      expect(writes).toBeGreaterThan(10);

      for (const fault of ["fail", "persist-then-fail"] as WriteFault[]) {
        for (let k = 1; k <= writes; k++) {
          const at = open(snapshot());
          let n = 0;
          const hook = () => (++n === k ? fault : "ok");
          at.db.faults = { write: hook };
          at.entries.faults = { write: hook };
          const cutOff = await migrateToEntriesStore(at.kv, at.leafKv, { chunk: CHUNK }).then(
            () => undefined,
            (e: unknown) => e,
          );
          const where = `${fault} at write ${k} of ${writes}`;
          expect(cutOff, where).toBeInstanceOf(VellumError);
          // A restart: what is durable, and nothing else.
          const db = at.db.simulateRestart();
          const entries = at.entries.simulateRestart();
          const kv = db.namespace("log");
          const leafKv = entries.namespace("log");
          const marked = (await kv.get(MIGRATION_KEY)) !== undefined;
          const opened = await new KvLogStore(kv, leafKv).load().then(
            (stored) => stored,
            (e: unknown) => e,
          );
          if (marked) {
            expect(opened, where).toMatchObject({
              code: "STATE_MISMATCH",
              message: expect.stringContaining("run `vellum migrate` again"),
            });
            const report = await fsck({ kv, entries: leafKv, verifierKey });
            expect(report.problems.map((p) => p.message)).toContain(
              "the log's move to layout 3 (vellum migrate) was cut off before it finished: the log does not open until `vellum migrate` is run again",
            );
          } else {
            // Cut off before the marker, or at the last write, which landed: the log as it was,
            // or as a clean run leaves it, and nothing between.
            expect(opened, where).toMatchObject({ state: { size: SIZE } });
            const now = { kv: await dump(kv), entries: await dump(leafKv) };
            const original = { kv: await dump(open(snapshot()).kv), entries: [] };
            expect([original, { kv: clean.kv, entries: clean.entries }], where).toContainEqual(now);
          }
          const again = await migrateToEntriesStore(kv, leafKv, { chunk: CHUNK });
          expect(again?.resumed, where).toBe(marked);
          expect(await dump(kv), where).toEqual(clean.kv);
          expect(await dump(leafKv), where).toEqual(clean.entries);
        }
      }
    });
  }

  it("puts a layout-1 log's leaf-hash keys under their eras, each still naming its entry", async () => {
    const { kv, leafKv } = open(layout1);
    await migrateToEntriesStore(kv, leafKv, { chunk: CHUNK });
    const store = new KvLogStore(kv, leafKv);
    const hashes = await kv.range({ gte: Uint8Array.of(0x68), lt: Uint8Array.of(0x69) });
    expect(hashes).toHaveLength(SIZE);
    for (const [key, value] of hashes.slice(0, 50)) {
      expect(key).toHaveLength(37);
      const [leaf] = await store.leaves([decodeIndex(value)]);
      expect(bytesEqual(key.subarray(5), hashLeaf(leaf!))).toBe(true);
      expect(await store.findByLeafHash(key.subarray(5))).toBe(decodeIndex(value));
    }
  });
});
