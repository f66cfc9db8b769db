/**
 * Never serve what does not verify (src/log/integrity.ts): stored data is damaged behind the
 * open log's back through the storage API (a leaf replaced, an entry deleted, a lookup key
 * pointed elsewhere), and every read that would return it fails with INTEGRITY_FAILURE, is
 * reported once per failed read, and leaves the undamaged entries readable.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { sha256 } from "../../src/core/crypto.js";
import { encodeLeaf, parseUuid } from "../../src/core/entry.js";
import type { IntegrityFailure } from "../../src/log/integrity.js";
import type { Log } from "../../src/log/log.js";
import {
  encodeIndex,
  entryKey,
  idKey,
  LEAF_HASH_LAYOUT,
  leafHashKey,
  payloadKey,
} from "../../src/storage/kv-log-layout.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { codeOfAsync } from "../helpers/errors.js";
import { openMemoryLog, payloadOf } from "./helpers.js";

const SIZE = 600; // two full tiles and a partial one

let log: Log;
let db: MemoryDatabase;
let failures: IntegrityFailure[];

beforeEach(async () => {
  failures = [];
  db = new MemoryDatabase();
  ({ log } = await openMemoryLog(db, {
    dedup: "payload", // the payload index is one of the lookups checked here
    onIntegrityFailure: (f) => failures.push(f),
  }));
  await log.submitMany(Array.from({ length: SIZE }, (_, i) => payloadOf(i)));
  // Reopened: the bundles the log just sealed are cached from memory (Reader.committed), and
  // reads here are of storage, as after a restart.
  await log.close();
  ({ log } = await openMemoryLog(db, {
    dedup: "payload",
    onIntegrityFailure: (f) => failures.push(f),
  }));
  vi.spyOn(console, "error").mockImplementation(() => undefined);
  return async () => {
    vi.restoreAllMocks();
    await log.close();
  };
});

/** Stores `leaf` under entry `index`, as a damaged disk would (the log is not told). */
async function overwrite(index: number, leaf: Uint8Array): Promise<void> {
  await db.namespace("log").write([{ type: "put", key: entryKey(index), value: leaf }]);
}

/** The stored leaf of `index` with one byte of its payload flipped. */
async function flipped(index: number): Promise<Uint8Array> {
  const leaf = (await db.namespace("log").get(entryKey(index)))!;
  const out = leaf.slice();
  out[out.length - 2]! ^= 0x01;
  return out;
}

describe("reads verify every leaf against the tree", () => {
  it("refuses a damaged leaf on every read route, and serves the others", async () => {
    const victim = 300;
    const original = await log.entry(victim);
    await overwrite(victim, await flipped(victim));
    const reads: [string, () => Promise<unknown>][] = [
      ["entry", () => log.entry(victim)],
      ["page", () => log.entries(290, 20)],
      ["by id", () => log.entryById(parseUuid(original.id))],
      ["by leaf hash", () => log.entryByLeafHash(original.leafHash)],
      ["receipt", () => log.receipt(victim)],
      ["full bundle", () => log.entryBundle(1, 256)],
      ["partial bundle", () => log.entryBundle(1, 100)],
    ];
    for (const [what, read] of reads) {
      expect(`${what}: ${await codeOfAsync(read())}`).toBe(`${what}: INTEGRITY_FAILURE`);
    }
    expect(failures.length).toBe(reads.length);
    expect(failures.every((f) => f.kind === "leaf" && f.index === victim)).toBe(true);
    expect(failures[0]!.detail).toMatch(
      /^entry 300: its stored leaf hashes to \w+…, the tree's level-0 hash is \w+… \(tile 0\/1\)$/,
    );
    // Neighbours, other pages and other bundles are untouched.
    expect((await log.entry(victim - 1)).index).toBe(victim - 1);
    expect((await log.entries(0, 256)).map((e) => e.index)).toEqual([...Array(256).keys()]);
    expect((await log.entryBundle(0, 256)).length).toBeGreaterThan(0);
    expect((await log.entryBundle(1, 44)).length).toBeGreaterThan(0); // ends before the victim
  });

  it("refuses a leaf that decodes fine but is another entry's (a consistent rewrite)", async () => {
    const e = await log.entry(7);
    const forged = encodeLeaf({
      id: parseUuid(e.id),
      timestamp: e.timestamp,
      payload: payloadOf(1, "forged"),
    });
    await overwrite(7, forged);
    expect(await codeOfAsync(log.entry(7))).toBe("INTEGRITY_FAILURE");
    expect(await codeOfAsync(log.entries(0, 10))).toBe("INTEGRITY_FAILURE");
  });

  it("refuses a leaf that no longer decodes with INTEGRITY_FAILURE, not MALFORMED", async () => {
    await overwrite(3, Uint8Array.of(1, 2, 3));
    expect(await codeOfAsync(log.entry(3))).toBe("INTEGRITY_FAILURE");
    expect(await codeOfAsync(log.receipt(3))).toBe("INTEGRITY_FAILURE");
  });

  it("answers a gap in a page with INTEGRITY_FAILURE, never with shifted rows", async () => {
    await db.namespace("log").write([{ type: "del", key: entryKey(597) }]);
    // Rows before the gap are fine on their own; a page across it is refused whole.
    expect((await log.entries(590, 7)).map((e) => e.index)).toEqual([
      590, 591, 592, 593, 594, 595, 596,
    ]);
    expect(await codeOfAsync(log.entries(590, 10))).toBe("INTEGRITY_FAILURE");
    expect(await codeOfAsync(log.entry(597))).toBe("INTEGRITY_FAILURE");
    expect(await codeOfAsync(log.entryBundle(2, 88))).toBe("INTEGRITY_FAILURE");
    expect(failures.map((f) => [f.kind, f.index])).toEqual([
      ["missing", 597],
      ["missing", 597],
      ["missing", 597],
    ]);
    // The last entry missing: a page up to the end is refused too (the gap is at its tail).
    await db.namespace("log").write([{ type: "del", key: entryKey(SIZE - 1) }]);
    expect(await codeOfAsync(log.entries(SIZE - 2, 10))).toBe("INTEGRITY_FAILURE");
    expect(failures.at(-1)).toMatchObject({ kind: "missing", index: SIZE - 1 });
  });

  it("refuses a lookup index that points at another entry", async () => {
    const a = await log.entry(10);
    await db
      .namespace("log")
      .write([{ type: "put", key: idKey(parseUuid(a.id)), value: encodeIndex(11) }]);
    expect(await codeOfAsync(log.entryById(parseUuid(a.id)))).toBe("INTEGRITY_FAILURE");
    expect(failures.at(-1)).toMatchObject({ kind: "lookup", index: 11 });
    const b = await log.entry(20);
    await db
      .namespace("log")
      .write([
        { type: "put", key: leafHashKey(b.leafHash, 20, LEAF_HASH_LAYOUT), value: encodeIndex(21) },
      ]);
    expect(await codeOfAsync(log.entryByLeafHash(b.leafHash))).toBe("INTEGRITY_FAILURE");
    expect(await codeOfAsync(log.indexOfLeafHash(b.leafHash))).toBe("INTEGRITY_FAILURE");
    expect(failures.at(-1)).toMatchObject({ kind: "lookup", index: 21 });
  });

  it("does not answer a duplicate with another entry's receipt when the payload index is damaged", async () => {
    await db
      .namespace("log")
      .write([{ type: "put", key: payloadKey(sha256(payloadOf(30))), value: encodeIndex(31) }]);
    expect(await codeOfAsync(log.submit(payloadOf(30)))).toBe("INTEGRITY_FAILURE");
    expect(failures.at(-1)).toMatchObject({ kind: "lookup", index: 31 });
    // An undamaged duplicate is still answered with its original.
    expect((await log.submit(payloadOf(32))).index).toBe(32);
  });

  it("verifies a full bundle before caching it, so a hit serves verified bytes only", async () => {
    const good = await log.entryBundle(0, 256);
    await overwrite(5, await flipped(5));
    // Cached before the damage: the same verified bytes, with no new read.
    expect(await log.entryBundle(0, 256)).toEqual(good);
    // Damaged before its first read: refused, and not cached (refused again).
    await overwrite(260, await flipped(260));
    expect(await codeOfAsync(log.entryBundle(1, 256))).toBe("INTEGRITY_FAILURE");
    expect(await codeOfAsync(log.entryBundle(1, 256))).toBe("INTEGRITY_FAILURE");
    expect(failures.map((f) => f.index)).toEqual([260, 260]);
  });

  it("caches the bundles a batch completes from the committed leaves: equal to storage's, no read", async () => {
    const fresh = new MemoryDatabase();
    const { log: writing } = await openMemoryLog(fresh, { batchMaxEntries: 100 });
    // Batches of at most 100 across bundle boundaries, the first not starting on one.
    await writing.submit(payloadOf(0));
    for (let i = 1; i < SIZE; i += 97) {
      await writing.submitMany(
        Array.from({ length: Math.min(97, SIZE - i) }, (_, k) => payloadOf(i + k)),
      );
    }
    const reads = fresh.counters.reads;
    const fromMemory = [await writing.entryBundle(0, 256), await writing.entryBundle(1, 256)];
    expect(fresh.counters.reads).toBe(reads); // neither read storage
    await writing.close();
    const { log: reopened } = await openMemoryLog(fresh);
    const fromStorage = [await reopened.entryBundle(0, 256), await reopened.entryBundle(1, 256)];
    expect(fresh.counters.reads).toBeGreaterThan(reads);
    expect(fromMemory).toEqual(fromStorage);
    await reopened.close();
  });

  it("serves leaves from what it holds in memory and the rest verified from storage, the same bytes", async () => {
    const fresh = new MemoryDatabase();
    const { log: writing } = await openMemoryLog(fresh, { batchMaxEntries: 100 });
    await writing.submitMany(Array.from({ length: 600 }, (_, k) => payloadOf(k)));
    const reads = fresh.counters.reads;
    // Bundles 0 and 1 (full, cached when committed) and the first 88 of bundle 2 (filling).
    const fromMemory = await writing.leaves(0, 600);
    expect(fresh.counters.reads).toBe(reads);
    const fromEntries = (await writing.entries(0, 600)).map((e) => e.leaf);
    expect(fromMemory).toEqual(fromEntries);
    // A range across what is held and what is not: a fresh process holds nothing.
    await writing.close();
    const { log: reopened } = await openMemoryLog(fresh);
    expect(await reopened.leaves(250, 300)).toEqual(fromEntries.slice(250, 550));
    expect(fresh.counters.reads).toBeGreaterThan(reads);
    // Not beyond the published size; damaged storage is refused, as entries() refuses it.
    expect(await reopened.leaves(590, 50)).toHaveLength(10);
    await reopened.close();
  });

  it("refuses a damaged leaf that leaves() reads from storage", async () => {
    await overwrite(300, await flipped(300));
    expect(await codeOfAsync(log.leaves(290, 20))).toBe("INTEGRITY_FAILURE");
  });
});
