/**
 * The index store (src/indexing/local-store.ts) over its records: lists longer than a tile,
 * reloaded from storage after every revision (their partial level-0 tile is rebuilt from the
 * stored values, never stored), still answer runs that verify against the reference list at
 * every size a revision committed; a store in an older layout is dropped, to be rebuilt.
 */
import { describe, expect, it } from "vitest";
import { type IndexKey, indexKeysOfPayload } from "../../src/core/event-keys.js";
import { mapKeyOf } from "../../src/core/index-answer.js";
import { listLeaf, verifyListRun } from "../../src/core/list-run.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { KeyLists } from "../../src/indexing/key-lists.js";
import { LocalIndexStore, STATE_KEY } from "../../src/indexing/local-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import type { KeyValueStore, WriteOp } from "../../src/storage/types.js";
import { apiActivity } from "../audit/events.js";
import { mth } from "../server/helpers.js";

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
/** Every entry is alice's; resources r0..r2 in turn. */
/** Appends to a key's list as a revision does (loaded, then appended), its writes into `ops`. */
async function appendTo(
  kv: KeyValueStore,
  mapKey: Uint8Array,
  key: IndexKey,
  indices: readonly number[],
  ops: WriteOp[],
) {
  const lists = new KeyLists(kv);
  const [list] = await lists.loadMany([mapKey]);
  return lists.appendTo(
    list,
    mapKey,
    key,
    indices,
    indices.map((i) => hashLeaf(listLeaf(i))),
    (k, v) => ops.push({ type: "put", key: k.slice(), value: v.slice() }),
  );
}

const payload = (i: number) =>
  enc(apiActivity({ actor: { user: { uid: "alice" } }, resources: [{ uid: `r${i % 3}` }] }));
const alice: IndexKey = { kind: "actor", value: "alice" };

describe("LocalIndexStore", () => {
  it("answers verified runs at every committed size, its lists reloaded after each revision", async () => {
    const kv = new MemoryDatabase().namespace("index");
    const sizes: number[] = [];
    let next = 0;
    for (const n of [1, 254, 1, 300, 143, 256]) {
      const store = new LocalIndexStore(kv, indexKeysOfPayload);
      expect((await store.load()).size).toBe(next);
      const entries = Array.from({ length: n }, () => ({ index: next, payload: payload(next++) }));
      await store.apply(entries);
      sizes.push(next);
      // Only full level-0 tiles of alice's list tree are stored.
      const t = Uint8Array.of(0x74, ...mapKeyOf(alice), 0);
      const level0 = await kv.range({ gte: t, lt: Uint8Array.of(...t, 0xff) });
      expect(level0.length).toBe(Math.floor(next / 256));
    }
    const store = new LocalIndexStore(kv, indexKeysOfPayload);
    await store.load();
    for (const count of sizes) {
      const root = mth(Array.from({ length: count }, (_, i) => hashLeaf(listLeaf(i))));
      for (const [from, to] of [
        [0, count],
        [count - 1, count],
        [Math.floor(count / 2), count + 10],
      ] as const) {
        const q = { key: alice, count, from, to, order: "desc", limit: 40 } as const;
        const run = await store.run(q);
        expect(Buffer.from(run.listRoot)).toEqual(Buffer.from(root));
        const page = { ...run, listSize: count, from, to };
        const want = Array.from(
          { length: run.pageEnd - run.pageStart },
          (_, k) => run.pageStart + k,
        );
        expect(verifyListRun(page, count, root)).toEqual(want);
      }
    }
  });

  it("drops a store kept in an older layout, so that the engine rebuilds it from the log", async () => {
    const kv = new MemoryDatabase().namespace("index");
    const store = new LocalIndexStore(kv, indexKeysOfPayload);
    await store.load();
    await store.apply(Array.from({ length: 10 }, (_, i) => ({ index: i, payload: payload(i) })));
    expect((await new LocalIndexStore(kv, indexKeysOfPayload).load()).size).toBe(10);
    // What a store of the first layout holds: no layout record, one record per map node.
    await kv.write([
      { type: "del", key: Uint8Array.of(0x6c) },
      { type: "put", key: Uint8Array.of(0x6d, 0, 0), value: new Uint8Array(65) },
    ]);
    const state = await new LocalIndexStore(kv, indexKeysOfPayload).load();
    expect(state.size).toBe(0);
    expect(state.dropped).toMatch(/layout 1.*rebuilt from the log/);
    expect(await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) })).toEqual([]);
    expect(await kv.get(STATE_KEY)).toBeUndefined();
    // A store of the second layout (lists' partial chunks in records of their own) likewise.
    const again = new LocalIndexStore(kv, indexKeysOfPayload);
    await again.load();
    await again.apply(Array.from({ length: 10 }, (_, i) => ({ index: i, payload: payload(i) })));
    await kv.write([{ type: "put", key: Uint8Array.of(0x6c), value: Uint8Array.of(2) }]);
    const second = await new LocalIndexStore(kv, indexKeysOfPayload).load();
    expect(second.size).toBe(0);
    expect(second.dropped).toMatch(/layout 2, this version keeps layout 3.*rebuilt from the log/);
    expect(await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) })).toEqual([]);
  });

  it("stores a list appended in two revisions exactly as one appended at once", async () => {
    const key: IndexKey = { kind: "resource", value: "invoice-7" };
    const mapKey = mapKeyOf(key);
    const dump = async (kv: ReturnType<MemoryDatabase["namespace"]>) =>
      (await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) })).map(([k, v]) =>
        Buffer.concat([k, Buffer.from("="), v]).toString("hex"),
      );
    // One entry, then a second onto the list loaded from storage …
    const a = new MemoryDatabase().namespace("index");
    for (const indices of [[5], [9]]) {
      const ops: WriteOp[] = [];
      await appendTo(a, mapKey, key, indices, ops);
      await a.write(ops);
    }
    // … against both entries at once.
    const b = new MemoryDatabase().namespace("index");
    const ops: WriteOp[] = [];
    const both = await appendTo(b, mapKey, key, [5, 9], ops);
    await b.write(ops);
    expect(await dump(a)).toEqual(await dump(b));
    const root = mth([5, 9].map((i) => hashLeaf(listLeaf(i))));
    expect(Buffer.from(both.root)).toEqual(Buffer.from(root));
    expect(both.count).toBe(2);
  });

  it("stores a new short list (built without a Tree) as a long one built with it", async () => {
    // A new key with fewer than 256 entries takes KeyLists' short path; 256 or more, the Tree.
    // Either way, then appended to after a reload, the store ends up byte for byte the same.
    const key: IndexKey = { kind: "actor", value: "alice" };
    const mapKey = mapKeyOf(key);
    const indices = Array.from({ length: 300 }, (_, i) => 3 * i + 1);
    const dumpOf = async (splits: number[]) => {
      const kv = new MemoryDatabase().namespace("index");
      let at = 0;
      let last: { count: number; root: Uint8Array } | undefined;
      for (const n of splits) {
        const ops: WriteOp[] = [];
        last = await appendTo(kv, mapKey, key, indices.slice(at, at + n), ops);
        await kv.write(ops);
        at += n;
      }
      const rows = await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) });
      return {
        rows: rows.map(([k, v]) => Buffer.concat([k, Buffer.from("="), v]).toString("hex")),
        count: last!.count,
        root: Buffer.from(last!.root).toString("hex"),
      };
    };
    const whole = await dumpOf([300]);
    expect(whole.count).toBe(300);
    expect(whole.root).toBe(
      Buffer.from(mth(indices.map((i) => hashLeaf(listLeaf(i))))).toString("hex"),
    );
    for (const splits of [
      [255, 45],
      [1, 299],
      [200, 56, 44],
      [100, 100, 100],
    ]) {
      expect(await dumpOf(splits)).toEqual(whole);
    }
  });

  it("refuses indices that do not increase, on a new list and on a stored one, writing nothing", async () => {
    const key: IndexKey = { kind: "actor", value: "bob" };
    const mapKey = mapKeyOf(key);
    const kv = new MemoryDatabase().namespace("index");
    const ops: WriteOp[] = [];
    await expect(appendTo(kv, mapKey, key, [5, 3], ops)).rejects.toThrow(/must increase/);
    expect(ops).toEqual([]);
    await appendTo(kv, mapKey, key, [5, 9], ops);
    await kv.write(ops);
    const more: WriteOp[] = [];
    await expect(appendTo(kv, mapKey, key, [9], more)).rejects.toThrow(/must increase/);
    expect(more).toEqual([]);
  });

  it("drops an old store with its state deleted last, so a crash part way is dropped again", async () => {
    const db = new MemoryDatabase();
    const kv = db.namespace("index");
    const store = new LocalIndexStore(kv, indexKeysOfPayload);
    await store.load();
    await store.apply(Array.from({ length: 10 }, (_, i) => ({ index: i, payload: payload(i) })));
    await kv.write([{ type: "del", key: Uint8Array.of(0x6c) }]); // as layout 1 left it
    const writes: (readonly WriteOp[])[] = [];
    // The last write (the state's deletion) fails, as if the process died before it.
    db.faults = {
      write: (_ns, ops) => {
        writes.push(ops);
        return ops.length === 1 && ops[0]!.type === "del" && ops[0]!.key.length === 1
          ? "fail"
          : "ok";
      },
    };
    await expect(new LocalIndexStore(kv, indexKeysOfPayload).load()).rejects.toMatchObject({
      code: "STORAGE_FAILURE",
    });
    expect(writes.length).toBeGreaterThan(1);
    expect(
      writes
        .slice(0, -1)
        .flat()
        .some((op) => op.key.length === 1 && op.key[0] === 0x73),
    ).toBe(false);
    // Everything but the state is gone; the next open drops it again and finishes.
    const left = await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) });
    expect(left.map(([key]) => Buffer.from(key).toString("hex"))).toEqual(["73"]);
    db.faults = {};
    await kv.recover();
    const state = await new LocalIndexStore(kv, indexKeysOfPayload).load();
    expect(state).toMatchObject({ size: 0, dropped: expect.stringMatching(/layout 1/) });
    expect(await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) })).toEqual([]);
  });
});

describe("LocalIndexStore over writes that are not synced (a boot id given)", () => {
  const BOOT_A = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  const BOOT_B = "11111111-2222-3333-4444-555555555555";
  const entries = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ index: from + i, payload: payload(from + i) }));
  const everything = (kv: ReturnType<MemoryDatabase["namespace"]>) =>
    kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) });

  it("drops a store whose last writes were made under another boot and never closed", async () => {
    const kv = new MemoryDatabase().namespace("index");
    const store = new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_A });
    await store.load();
    await store.apply(entries(0, 10));
    // The process was killed (no close); the same boot: every write is there.
    const again = await new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_A }).load();
    expect(again.size).toBe(10);
    expect(again.dropped).toBeUndefined();
    // The machine restarted: the writes may be lost, or lost out of order.
    const after = await new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_B }).load();
    expect(after.size).toBe(0);
    expect(after.dropped).toMatch(/machine restarted .*not synced.*rebuilt from the log/);
    expect(await everything(kv)).toEqual([]);
  });

  it("keeps a store closed cleanly, whatever boot opens it next, and one written synced", async () => {
    const kv = new MemoryDatabase().namespace("index");
    const store = new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_A });
    await store.load();
    const root = await store.apply(entries(0, 10));
    await store.close();
    const after = await new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_B }).load();
    expect(after).toEqual({ size: 10, mapRoot: root });
    // Another revision under the new boot, not closed: a third boot drops it.
    const b = new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_B });
    await b.load();
    await b.apply(entries(10, 5));
    expect(
      (await new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_A }).load()).size,
    ).toBe(0);
    // A store written with synced writes (no boot id) is kept by one that has a boot id.
    const synced = new MemoryDatabase().namespace("index");
    const s = new LocalIndexStore(synced, indexKeysOfPayload);
    await s.load();
    await s.apply(entries(0, 3));
    expect(
      (await new LocalIndexStore(synced, indexKeysOfPayload, { bootId: BOOT_B }).load()).size,
    ).toBe(3);
  });

  it("writes its state durably on close, and each revision's with the boot id", async () => {
    const kv = new MemoryDatabase().namespace("index");
    const durable: WriteOp[][] = [];
    const plain: WriteOp[][] = [];
    const write = kv.write.bind(kv);
    kv.write = (ops) => {
      plain.push([...ops]);
      return write(ops);
    };
    (kv as { writeDurable?: (ops: readonly WriteOp[]) => Promise<void> }).writeDurable = (ops) => {
      durable.push([...ops]);
      return write(ops);
    };
    const store = new LocalIndexStore(kv, indexKeysOfPayload, { bootId: BOOT_A });
    await store.load();
    await store.apply(entries(0, 4));
    const state = await kv.get(STATE_KEY);
    expect(new TextDecoder().decode(state!.subarray(40))).toBe(BOOT_A);
    expect(durable).toEqual([]);
    await store.close();
    expect(durable.length).toBe(1);
    expect(durable[0]!.map((op) => op.key)).toEqual([STATE_KEY]);
    expect((await kv.get(STATE_KEY))!.length).toBe(40);
  });
});
