/**
 * The index's stored map (src/indexing/map-store.ts) against the reference map built from the
 * definition (src/core/smt.ts): the same root after every batch of updates, and proofs that the
 * reference verifier accepts, for present and absent keys.
 */
import { describe, expect, it } from "vitest";
import { sha256 } from "../../src/core/crypto.js";
import { EMPTY_HASH, SparseMerkleMap, verifySmtProof } from "../../src/core/smt.js";
import { MapStore } from "../../src/indexing/map-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import type { WriteOp } from "../../src/storage/types.js";

const h = (s: string) => sha256(new TextEncoder().encode(s));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("MapStore", () => {
  it("keeps the reference map's root and proofs through batches of updates", async () => {
    const kv = new MemoryDatabase().namespace("index");
    let store = new MapStore(kv, EMPTY_HASH);
    const reference = new Map<string, { key: Uint8Array; value: Uint8Array }>();
    let round = 0;
    for (const batch of [1, 1, 2, 5, 17, 3, 40, 1, 100]) {
      const ops: WriteOp[] = [];
      const changes = Array.from({ length: batch }, (_, i) => {
        // Some new keys, some updates of existing ones.
        const key = h(`key ${i % 2 === 0 ? `${round}-${i}` : `${i}`}`);
        return { key, value: h(`value ${round} ${i}`) };
      });
      const distinct = [...new Map(changes.map((c) => [hex(c.key), c])).values()];
      const root = await store.update(distinct, ops);
      await kv.write(ops);
      for (const c of distinct) reference.set(hex(c.key), c);
      const want = new SparseMerkleMap([...reference.values()]);
      expect(hex(root)).toBe(hex(want.root));
      // A fresh store over the same data (no cache) proves the same.
      if (round % 2 === 1) store = new MapStore(kv, root);
      for (const c of [...reference.values()].slice(0, 20)) {
        const proof = await store.prove(c.key);
        expect(proof).toEqual(want.prove(c.key));
        expect(hex(verifySmtProof(root, c.key, proof)!)).toBe(hex(c.value));
      }
      const absent = h(`absent ${round}`);
      expect(verifySmtProof(root, absent, await store.prove(absent))).toBeUndefined();
      round++;
    }
  });
  it("keeps the reference's root through paths that cross tiles, down to the last bit", async () => {
    const kv = new MemoryDatabase().namespace("index");
    let store = new MapStore(kv, EMPTY_HASH);
    const reference = new Map<string, { key: Uint8Array; value: Uint8Array }>();
    // Random keys, keys sharing their first 3 bytes (paths through tiers 0-3), and two keys
    // that differ only in their last bit (a split at depth 255, leaves at depth 256).
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 2000; i++) keys.push(h(`random ${i}`));
    for (let i = 0; i < 100; i++)
      keys.push(Uint8Array.from(h(`deep ${i}`), (b, k) => (k < 3 ? 0 : b)));
    const last = h("last");
    keys.push(
      last,
      Uint8Array.from(last, (b, k) => (k === 31 ? b ^ 1 : b)),
    );
    let batch = 1;
    for (let at = 0; at < keys.length; at += batch, batch *= 3) {
      const ops: WriteOp[] = [];
      const changes = keys
        .slice(at, at + batch)
        .map((key) => ({ key, value: h(`v ${hex(key)} ${at}`) }));
      const root = await store.update(changes, ops);
      await kv.write(ops);
      for (const c of changes) reference.set(hex(c.key), c);
      expect(hex(root)).toBe(hex(new SparseMerkleMap([...reference.values()]).root));
      store = new MapStore(kv, root);
    }
    const want = new SparseMerkleMap([...reference.values()]);
    for (const key of [keys[0]!, keys[2050]!, last, keys[keys.length - 1]!]) {
      const proof = await store.prove(key);
      expect(proof).toEqual(want.prove(key));
      expect(verifySmtProof(want.root, key, proof)).toBeDefined();
    }
    // Updating a key deep down rewrites its path only: the root follows the reference.
    const ops: WriteOp[] = [];
    const change = { key: last, value: h("new value") };
    reference.set(hex(last), change);
    expect(hex(await store.update([change], ops))).toBe(
      hex(new SparseMerkleMap([...reference.values()]).root),
    );
    expect(ops.length).toBeLessThanOrEqual(33);
  });

  it("refuses damaged or missing tiles rather than taking them as empty", async () => {
    const kv = new MemoryDatabase().namespace("index");
    const store = new MapStore(kv, EMPTY_HASH);
    const ops: WriteOp[] = [];
    const changes = Array.from({ length: 600 }, (_, i) => ({
      key: h(`k ${i}`),
      value: h(`v ${i}`),
    }));
    const root = await store.update(changes, ops);
    await kv.write(ops);
    const tiles = await kv.range({ gte: Uint8Array.of(0x4d), lt: Uint8Array.of(0x4e) });
    const tier1 = tiles.find(([key]) => key.length === 3)!;
    // A record whose kind byte is neither inner nor leaf.
    const damaged = Uint8Array.from(tier1[1]);
    damaged[32] = 7;
    await kv.write([{ type: "put", key: tier1[0], value: damaged }]);
    const key = changes.find((c) => c.key[0] === tier1[0][2])!.key;
    await expect(new MapStore(kv, root).prove(key)).rejects.toMatchObject({
      code: "STATE_MISMATCH",
    });
    // The tile gone: a proof and an update under it both fail.
    await kv.write([{ type: "del", key: tier1[0] }]);
    await expect(new MapStore(kv, root).prove(key)).rejects.toMatchObject({
      code: "STATE_MISMATCH",
    });
    const more: WriteOp[] = [];
    await expect(
      new MapStore(kv, root).update([{ key, value: h("other") }], more),
    ).rejects.toMatchObject({ code: "STATE_MISMATCH" });
  });
});
