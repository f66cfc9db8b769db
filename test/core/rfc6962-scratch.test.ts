/**
 * hashLeaf and hashChildren hash through reused input buffers (src/core/rfc6962.ts): each hash
 * must depend only on its own input, whatever was hashed before it, at every size the scratch
 * takes (grown) or does not take (over 64 KiB), with either crypto provider.
 */
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { concatBytes } from "../../src/core/bytes.js";
import { nobleCrypto, setCryptoProvider } from "../../src/core/crypto.js";
import { hashChildren, hashLeaf } from "../../src/core/rfc6962.js";
import { nodeCrypto } from "../../src/platform/node-crypto.js";

const reference = (prefix: number, ...parts: Uint8Array[]) =>
  nobleSha256(concatBytes(Uint8Array.of(prefix), ...parts));

describe.each([nodeCrypto, nobleCrypto])(
  "RFC 6962 hashes through scratch buffers ($name)",
  (provider) => {
    afterAll(() => setCryptoProvider(nobleCrypto));

    it("a leaf's hash is its own, after larger and smaller ones, across the 64 KiB limit", () => {
      setCryptoProvider(provider);
      const sizes = [0, 1, 63, 64, 1023, 1024, 1025, 5000, 65_534, 65_535, 65_536, 70_000, 10, 0];
      for (const size of sizes) {
        const entry = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff);
        expect(hashLeaf(entry)).toEqual(reference(0, entry));
      }
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 }), (entries) => {
          const hashes = entries.map(hashLeaf);
          expect(hashes).toEqual(entries.map((e) => reference(0, e)));
        }),
        { numRuns: 100 },
      );
    });

    it("a hash returned earlier is not changed by later hashes", () => {
      setCryptoProvider(provider);
      const a = new Uint8Array(32).fill(1);
      const b = new Uint8Array(32).fill(2);
      const first = hashChildren(a, b);
      const firstLeaf = hashLeaf(a);
      const copy = first.slice();
      const copyLeaf = firstLeaf.slice();
      hashChildren(b, a);
      hashLeaf(new Uint8Array(2000).fill(9));
      expect(first).toEqual(copy);
      expect(firstLeaf).toEqual(copyLeaf);
      expect(first).toEqual(reference(1, a, b));
    });
  },
);
