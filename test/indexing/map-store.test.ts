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
});
