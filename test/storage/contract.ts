/**
 * The storage conformance suite (src/storage/types.ts): every driver, test doubles included, runs
 * `runKeyValueContract` and must pass it unchanged. It covers what can be observed from one open
 * database: reads, bytewise order, batch semantics, namespace isolation, buffer ownership and the
 * close lifecycle. Crash durability needs a driver-specific restart and is tested beside each
 * driver.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isVellumError } from "../../src/core/errors.js";
import type { Database, KeyValueStore, WriteOp } from "../../src/storage/types.js";
import { writePuts } from "../../src/storage/write-puts.js";
import { codeOfAsync } from "../helpers/errors.js";

export interface FreshDatabase {
  readonly db: Database;
  readonly cleanup: () => Promise<void>;
}

/** Bytes from numbers, for readable tests. */
export const b = (...xs: number[]) => new Uint8Array(xs);
export const utf8 = (s: string) => new TextEncoder().encode(s);
export const put = (key: Uint8Array, value: Uint8Array): WriteOp => ({ type: "put", key, value });
export const del = (key: Uint8Array): WriteOp => ({ type: "del", key });

/** 8-byte big-endian, as the key layout stores integers; exact for all of 0..2^64-1. */
export function u64(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n);
  return out;
}

/** The code of the VellumError `f` throws synchronously or rejects with, or "no error". */
export async function codeOfCall(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (isVellumError(e)) return e.code;
    throw e;
  }
  return "no error";
}

const ALL = { gte: b(), lt: b(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) };

const hex = (x: Uint8Array) => Array.from(x, (v) => v.toString(16).padStart(2, "0")).join("");
const keysOf = (rows: [Uint8Array, Uint8Array][]) => rows.map(([k]) => hex(k));

export function runKeyValueContract(name: string, openFresh: () => Promise<FreshDatabase>): void {
  describe(`storage contract: ${name}`, () => {
    let fresh: FreshDatabase;
    let db: Database;
    let kv: KeyValueStore;

    beforeEach(async () => {
      fresh = await openFresh();
      db = fresh.db;
      kv = db.namespace("log");
    });
    afterEach(async () => {
      await fresh.cleanup();
    });

    describe("get and getMany", () => {
      it("returns undefined for an absent key and the value for a present one", async () => {
        expect(await kv.get(b(1))).toBeUndefined();
        await kv.write([put(b(1), b(10, 11))]);
        expect(await kv.get(b(1))).toEqual(b(10, 11));
        expect(await kv.get(b(1, 0))).toBeUndefined();
        expect(await kv.get(b())).toBeUndefined();
      });

      it("stores empty values and the empty key", async () => {
        await kv.write([put(b(), b(1)), put(b(2), b())]);
        expect(await kv.get(b())).toEqual(b(1));
        expect(await kv.get(b(2))).toEqual(b());
        expect(keysOf(await kv.range(ALL))).toEqual(["", "02"]);
      });

      it("keeps every key and value of a batch distinct (drivers may reuse scratch buffers)", async () => {
        // Many same-length keys and small values in one write: a driver that hands the store
        // views of a reused buffer without the store copying them would collapse these.
        const ops = Array.from({ length: 300 }, (_, i) => ({
          type: "put" as const,
          key: Uint8Array.of(7, i >> 8, i & 255),
          value: Uint8Array.of(i & 255, (i * 7) & 255, 1, 2),
        }));
        await kv.write(ops);
        const got = await kv.getMany(ops.map((o) => o.key));
        expect(got).toEqual(ops.map((o) => o.value));
        const rows = await kv.range({ gte: Uint8Array.of(7), lt: Uint8Array.of(8) });
        expect(rows.map(([k]) => k)).toEqual(ops.map((o) => o.key));
      });

      it("overwrites a value", async () => {
        await kv.write([put(b(1), b(1))]);
        await kv.write([put(b(1), b(2, 2))]);
        expect(await kv.get(b(1))).toEqual(b(2, 2));
      });

      it("getMany keeps the order of its keys, with undefined holes and repeats", async () => {
        await kv.write([put(b(1), b(0xa)), put(b(3), b(0xc))]);
        expect(await kv.getMany([b(3), b(2), b(1), b(3)])).toEqual([
          b(0xc),
          undefined,
          b(0xa),
          b(0xc),
        ]);
        expect(await kv.getMany([])).toEqual([]);
      });

      it("reads a large value intact", async () => {
        const big = new Uint8Array(1 << 20);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
        await kv.write([put(b(1), big)]);
        const got = (await kv.get(b(1)))!;
        // Buffer.compare: toEqual on a megabyte is slow.
        expect(Buffer.compare(got, big)).toBe(0);
      });
    });

    describe("range", () => {
      const keys = [b(1), b(2), b(2, 0), b(3), b(5), b(9)];
      beforeEach(async () => {
        await kv.write(keys.map((k) => put(k, k)));
      });

      it("includes gte and excludes lt", async () => {
        expect(keysOf(await kv.range({ gte: b(2), lt: b(5) }))).toEqual(["02", "0200", "03"]);
        expect(keysOf(await kv.range({ gte: b(2, 0), lt: b(5, 0) }))).toEqual(["0200", "03", "05"]);
      });

      it("returns each key with its value", async () => {
        const rows = await kv.range({ gte: b(3), lt: b(6) });
        expect(rows).toEqual([
          [b(3), b(3)],
          [b(5), b(5)],
        ]);
      });

      it("honours limit, counting from the start of the order asked for", async () => {
        expect(keysOf(await kv.range({ gte: b(), lt: b(0xff), limit: 2 }))).toEqual(["01", "02"]);
        expect(keysOf(await kv.range({ ...ALL, limit: 2, reverse: true }))).toEqual(["09", "05"]);
        expect(await kv.range({ ...ALL, limit: 0 })).toEqual([]);
        expect(await kv.range({ ...ALL, limit: 100 })).toHaveLength(keys.length);
      });

      it("reverse returns the same entries in descending order", async () => {
        const up = keysOf(await kv.range({ gte: b(2), lt: b(9) }));
        const down = keysOf(await kv.range({ gte: b(2), lt: b(9), reverse: true }));
        expect(up).toEqual(["02", "0200", "03", "05"]);
        expect(down).toEqual([...up].reverse());
      });

      it("is empty when nothing is in bounds or the bounds are inverted", async () => {
        expect(await kv.range({ gte: b(6), lt: b(9) })).toEqual([]);
        expect(await kv.range({ gte: b(5), lt: b(5) })).toEqual([]);
        expect(await kv.range({ gte: b(9), lt: b(1) })).toEqual([]);
        expect(await kv.range({ gte: b(9), lt: b(1), reverse: true })).toEqual([]);
        expect(await db.namespace("empty").range(ALL)).toEqual([]);
      });

      it("returns a range of thousands of entries in full", async () => {
        const n = 3000;
        const value = new Uint8Array(300).fill(7);
        const ops = Array.from({ length: n }, (_, i) => put(u64(BigInt(i)), value));
        await kv.write(ops);
        const lo = u64(0n);
        const hi = u64(BigInt(n));
        const rows = await kv.range({ gte: lo, lt: hi });
        expect(rows).toHaveLength(n);
        expect(rows.every(([k], i) => hex(k) === hex(u64(BigInt(i))))).toBe(true);
        expect(rows.every(([, v]) => v.length === 300 && v[299] === 7)).toBe(true);
        const back = await kv.range({ gte: lo, lt: hi, reverse: true, limit: 1500 });
        expect(back).toHaveLength(1500);
        expect(hex(back[0]![0])).toBe(hex(u64(BigInt(n - 1))));
        expect(hex(back[1499]![0])).toBe(hex(u64(BigInt(n - 1500))));
      });

      it("refuses a negative or fractional limit with INTERNAL", async () => {
        expect(await codeOfCall(() => kv.range({ ...ALL, limit: -1 }))).toBe("INTERNAL");
        expect(await codeOfCall(() => kv.range({ ...ALL, limit: 1.5 }))).toBe("INTERNAL");
      });
    });

    describe("order is bytewise unsigned", () => {
      it("sorts 0x80 and 0xff after 0x7f, and a proper prefix first", async () => {
        const shuffled = [
          b(0xff),
          b(0x80),
          b(0x7f),
          b(0x01, 0x00),
          b(0x01),
          b(0x00),
          b(0x7f, 0xff),
        ];
        await kv.write(shuffled.map((k) => put(k, b(0))));
        expect(keysOf(await kv.range({ gte: b(), lt: b(0xff, 0xff) }))).toEqual([
          "00",
          "01",
          "0100",
          "7f",
          "7fff",
          "80",
          "ff",
        ]);
      });

      it("puts 8-byte big-endian integers in numeric order past 2^32 and 2^53", async () => {
        const ns = [2n ** 64n - 1n, 2n ** 53n, 2n ** 32n, 2n ** 32n - 1n, 256n, 255n, 0n];
        await kv.write(ns.map((n) => put(u64(n), u64(n))));
        const rows = await kv.range({
          gte: u64(0n),
          lt: b(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0),
        });
        expect(keysOf(rows)).toEqual([...ns].reverse().map((n) => hex(u64(n))));
        const mid = await kv.range({ gte: u64(2n ** 32n - 1n), lt: u64(2n ** 53n) });
        expect(keysOf(mid)).toEqual([hex(u64(2n ** 32n - 1n)), hex(u64(2n ** 32n))]);
      });
    });

    describe("write", () => {
      it("applies a batch in order: the later op on a key wins", async () => {
        await kv.write([put(b(1), b(1)), del(b(1)), put(b(1), b(2))]);
        expect(await kv.get(b(1))).toEqual(b(2));
        await kv.write([put(b(2), b(1)), del(b(2))]);
        expect(await kv.get(b(2))).toBeUndefined();
        await kv.write([del(b(1)), put(b(1), b(3)), put(b(1), b(4))]);
        expect(await kv.get(b(1))).toEqual(b(4));
      });

      it("makes every op of a resolved batch visible, including deletes of older keys", async () => {
        await kv.write([put(b(1), b(1)), put(b(2), b(2))]);
        await kv.write([del(b(1)), put(b(3), b(3)), put(b(4), b(4)), del(b(9))]);
        expect(keysOf(await kv.range(ALL))).toEqual(["02", "03", "04"]);
      });

      it("resolves an empty batch and changes nothing", async () => {
        await kv.write([put(b(1), b(1))]);
        await kv.write([]);
        expect(keysOf(await kv.range(ALL))).toEqual(["01"]);
      });

      it("shows a resolved write to another handle of the same namespace", async () => {
        const other = db.namespace("log");
        await kv.write([put(b(5), b(5))]);
        expect(await other.get(b(5))).toEqual(b(5));
        await other.write([del(b(5))]);
        expect(await kv.get(b(5))).toBeUndefined();
      });

      it("refuses a malformed op with INTERNAL and applies none of the batch", async () => {
        const bad = [put(b(1), b(1)), { type: "merge", key: b(2) } as unknown as WriteOp];
        expect(await codeOfCall(() => kv.write(bad))).toBe("INTERNAL");
        const notBytes = [put(b(1), "x" as unknown as Uint8Array)];
        expect(await codeOfCall(() => kv.write(notBytes))).toBe("INTERNAL");
        expect(await kv.get(b(1))).toBeUndefined();
      });
    });

    describe("writePuts (the driver's, or one write of copies where it has none)", () => {
      it("writes every put, copying keys and values the caller reuses", async () => {
        const key = new Uint8Array(2);
        const small = new Uint8Array(1);
        const large = new Uint8Array(300);
        await writePuts(kv, (p) => {
          for (let i = 0; i < 500; i++) {
            key[0] = i >> 8;
            key[1] = i & 0xff;
            small[0] = i & 0xff;
            large.fill(i & 0xff);
            p(key, i % 2 === 0 ? small : large);
          }
        });
        const rows = await kv.range(ALL);
        expect(rows.length).toBe(500);
        rows.forEach(([k, v], i) => {
          expect([...k]).toEqual([i >> 8, i & 0xff]);
          expect(v.length).toBe(i % 2 === 0 ? 1 : 300);
          expect(v.every((x) => x === (i & 0xff))).toBe(true);
        });
      });

      it("writes nothing when given no put, and nothing when the filler throws", async () => {
        await writePuts(kv, () => {});
        await expect(
          writePuts(kv, (p) => {
            p(b(1), b(1));
            throw new Error("filler failed");
          }),
        ).rejects.toThrow();
        expect(await kv.range(ALL)).toEqual([]);
      });
    });

    describe("namespaces", () => {
      it("never see each other's keys, even with prefix-like names", async () => {
        const names = ["a", "ab", "b", "a-b"];
        for (const n of names) {
          await db.namespace(n).write([put(b(1), utf8(n)), put(utf8(`${n}!`), utf8(n))]);
        }
        for (const n of names) {
          const rows = await db.namespace(n).range(ALL);
          expect(rows.map(([, v]) => new TextDecoder().decode(v))).toEqual([n, n]);
          expect(await db.namespace(n).get(b(1))).toEqual(utf8(n));
        }
        expect(await kv.range(ALL)).toEqual([]);
      });

      it("keeps keys that look like another namespace's prefix inside their own namespace", async () => {
        const a = db.namespace("a");
        const ab = db.namespace("ab");
        // Under the "!name!" prefix scheme, "a" + "b!x" and "ab" + "!x" would both be "!a" "b!x"
        // if the separator were not reserved; also keys that spell out another whole prefix.
        await a.write([put(utf8("b!x"), b(1)), put(utf8("!ab!x"), b(2)), put(b(0xff), b(3))]);
        expect(await ab.get(utf8("!x"))).toBeUndefined();
        expect(await ab.get(utf8("x"))).toBeUndefined();
        expect(await ab.range(ALL)).toEqual([]);
        await ab.write([put(utf8("!x"), b(9))]);
        expect(await a.get(utf8("b!x"))).toEqual(b(1));
        expect(keysOf(await a.range(ALL))).toEqual([hex(utf8("!ab!x")), hex(utf8("b!x")), "ff"]);
        expect(keysOf(await ab.range(ALL))).toEqual([hex(utf8("!x"))]);
      });

      it("deletes only in their own namespace", async () => {
        await db.namespace("a").write([put(b(1), b(1))]);
        await db.namespace("ab").write([put(b(1), b(2))]);
        await db.namespace("ab").write([del(b(1))]);
        expect(await db.namespace("a").get(b(1))).toEqual(b(1));
      });

      it("refuse malformed names with MALFORMED", async () => {
        for (const bad of ["", "a!b", 'a"b', "a b", "é", "a\u0000", "x".repeat(201)]) {
          expect(await codeOfCall(() => db.namespace(bad)), JSON.stringify(bad)).toBe("MALFORMED");
        }
        expect(
          await codeOfCall(() => db.namespace("example.com/log-1_#$%&'()*+,:;<=>?@[]^`{|}~")),
        ).toBe("no error");
      });
    });

    describe("buffers are the caller's", () => {
      it("copies keys and values in, even when the caller mutates them right after write()", async () => {
        const key = b(1);
        const value = b(1, 2, 3);
        const pending = kv.write([put(key, value)]);
        key[0] = 2;
        value[0] = 9;
        await pending;
        value[1] = 9;
        expect(await kv.get(b(1))).toEqual(b(1, 2, 3));
        expect(await kv.get(b(2))).toBeUndefined();
      });

      it("copies Node Buffers in (whose slice() is a view)", async () => {
        const value = Buffer.from([1, 2, 3]);
        const pending = kv.write([put(Buffer.from([7]), value)]);
        value[0] = 9;
        await pending;
        expect(await kv.get(b(7))).toEqual(b(1, 2, 3));
      });

      it("hands out fresh plain Uint8Arrays from get, getMany and range", async () => {
        await kv.write([put(b(1), b(1, 1)), put(b(2), b(2, 2))]);
        const got = (await kv.get(b(1)))!;
        const many = (await kv.getMany([b(1), b(2)])) as Uint8Array[];
        const rows = await kv.range(ALL);
        for (const x of [got, ...many, ...rows.flat()]) {
          expect(Object.getPrototypeOf(x)).toBe(Uint8Array.prototype);
        }
        got.fill(0);
        for (const v of many) v.fill(0);
        for (const [k, v] of rows) {
          k.fill(0);
          v.fill(0);
        }
        expect(await kv.get(b(1))).toEqual(b(1, 1));
        expect(await kv.getMany([b(1), b(2)])).toEqual([b(1, 1), b(2, 2)]);
        expect(await kv.range(ALL)).toEqual([
          [b(1), b(1, 1)],
          [b(2), b(2, 2)],
        ]);
      });

      it("hands out distinct buffers for the same key read twice", async () => {
        await kv.write([put(b(1), b(1))]);
        const [x, y] = await Promise.all([kv.get(b(1)), kv.get(b(1))]);
        x!.fill(5);
        expect(y).toEqual(b(1));
      });
    });

    describe("close", () => {
      it("rejects every operation on a closed namespace handle with UNAVAILABLE", async () => {
        await kv.write([put(b(1), b(1))]);
        await kv.close();
        expect(await codeOfAsync(kv.get(b(1)))).toBe("UNAVAILABLE");
        expect(await codeOfAsync(kv.getMany([b(1)]))).toBe("UNAVAILABLE");
        expect(await codeOfAsync(kv.range(ALL))).toBe("UNAVAILABLE");
        expect(await codeOfAsync(kv.write([put(b(2), b(2))]))).toBe("UNAVAILABLE");
        await kv.close(); // idempotent
        // The database and other handles stay usable.
        expect(await db.namespace("log").get(b(1))).toEqual(b(1));
        expect(await db.namespace("log").get(b(2))).toBeUndefined();
      });

      it("rejects every operation after the database is closed with UNAVAILABLE", async () => {
        const other = db.namespace("other");
        await db.close();
        for (const s of [kv, other]) {
          expect(await codeOfAsync(s.get(b(1)))).toBe("UNAVAILABLE");
          expect(await codeOfAsync(s.getMany([b(1)]))).toBe("UNAVAILABLE");
          expect(await codeOfAsync(s.range(ALL))).toBe("UNAVAILABLE");
          expect(await codeOfAsync(s.write([put(b(1), b(1))]))).toBe("UNAVAILABLE");
        }
        expect(await codeOfCall(() => db.namespace("log"))).toBe("UNAVAILABLE");
        await db.close(); // idempotent
      });

      it("waits for writes in flight before resolving", async () => {
        const events: string[] = [];
        const writes = Array.from({ length: 5 }, (_, i) =>
          kv.write([put(b(i), new Uint8Array(1000))]).then(() => events.push(`write ${i}`)),
        );
        const closed = db.close().then(() => events.push("close"));
        // Started before close(), so they must succeed; started after, they must not.
        const late = codeOfAsync(kv.write([put(b(9), b(9))]));
        await Promise.all([...writes, closed]);
        expect(await late).toBe("UNAVAILABLE");
        expect(events.at(-1)).toBe("close");
        expect(events).toHaveLength(6);
      });

      it("a namespace handle's close waits for its own writes in flight", async () => {
        const events: string[] = [];
        const w = kv.write([put(b(1), b(1))]).then(() => events.push("write"));
        const c = kv.close().then(() => events.push("close"));
        await Promise.all([w, c]);
        expect(events).toEqual(["write", "close"]);
        expect(await db.namespace("log").get(b(1))).toEqual(b(1));
      });
    });
  });
}
