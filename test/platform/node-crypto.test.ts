/**
 * The two crypto providers must be interchangeable: the pure-JS default (browser verifier) and
 * node:crypto (server). Ed25519 is deterministic, so signatures must be byte-identical.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nobleCrypto, setCryptoProvider, sha256Into } from "../../src/core/crypto.js";
import { nodeCrypto } from "../../src/platform/node-crypto.js";

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max });
const seed = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe("noble and node:crypto agree", () => {
  it("SHA-256", () => {
    fc.assert(
      fc.property(bytes(2000), (data) => {
        expect(new Uint8Array(nodeCrypto.sha256(data))).toEqual(nobleCrypto.sha256(data));
      }),
      { numRuns: 300 },
    );
    // Every byte value in every position of the digest, through the one-byte string it is
    // copied out of (a digest byte ≥ 0x80 must not come back as a UTF-8 pair or a '?').
    for (let n = 0; n < 2000; n++) {
      const data = Uint8Array.of(n & 0xff, n >> 8);
      const digest = nodeCrypto.sha256(data);
      expect(digest).toBeInstanceOf(Uint8Array);
      expect(digest.length).toBe(32);
      expect(digest).toEqual(nobleCrypto.sha256(data));
    }
    // FIPS 180-2 "abc".
    expect(Buffer.from(nodeCrypto.sha256(new TextEncoder().encode("abc"))).toString("hex")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("SHA-256 into a given array: the digest at the offset, nothing else touched", () => {
    for (const provider of [nodeCrypto, nobleCrypto]) {
      setCryptoProvider(provider);
      try {
        fc.assert(
          fc.property(bytes(300), fc.integer({ min: 0, max: 40 }), (data, offset) => {
            const out = new Uint8Array(offset + 32 + 7).fill(0xa5);
            sha256Into(data, out, offset);
            expect(out.subarray(offset, offset + 32)).toEqual(nobleCrypto.sha256(data));
            expect(out.subarray(0, offset).every((b) => b === 0xa5)).toBe(true);
            expect(out.subarray(offset + 32).every((b) => b === 0xa5)).toBe(true);
          }),
          { numRuns: 200 },
        );
        expect(() => sha256Into(new Uint8Array(1), new Uint8Array(40), 9)).toThrow(RangeError);
        expect(() => sha256Into(new Uint8Array(1), new Uint8Array(40), -1)).toThrow(RangeError);
      } finally {
        setCryptoProvider(nobleCrypto);
      }
    }
  });

  it("Ed25519 keys and signatures are byte-identical and cross-verify", () => {
    fc.assert(
      fc.property(seed, bytes(300), fc.nat(), (s, msg, bit) => {
        const pub = nodeCrypto.ed25519PublicKey(s);
        expect(pub).toEqual(nobleCrypto.ed25519PublicKey(s));
        const sig = nodeCrypto.ed25519Sign(s, msg);
        expect(sig).toEqual(nobleCrypto.ed25519Sign(s, msg));
        expect(nobleCrypto.ed25519Verify(pub, msg, sig)).toBe(true);
        expect(nodeCrypto.ed25519Verify(pub, msg, sig)).toBe(true);
        const bad = sig.slice();
        bad[bit % 64]! ^= 1 << (bit % 8);
        expect(nobleCrypto.ed25519Verify(pub, msg, bad)).toBe(false);
        expect(nodeCrypto.ed25519Verify(pub, msg, bad)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it("RFC 8032 test 1 (empty message)", () => {
    const sk = Buffer.from(
      "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      "hex",
    );
    const want =
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    for (const p of [nobleCrypto, nodeCrypto]) {
      expect(Buffer.from(p.ed25519PublicKey(sk)).toString("hex")).toBe(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      );
      expect(Buffer.from(p.ed25519Sign(sk, new Uint8Array(0))).toString("hex")).toBe(want);
    }
  });

  it("both refuse malformed keys and signatures instead of throwing", () => {
    const s = new Uint8Array(32).fill(1);
    const pub = nodeCrypto.ed25519PublicKey(s);
    const sig = nodeCrypto.ed25519Sign(s, new Uint8Array([1]));
    for (const p of [nobleCrypto, nodeCrypto]) {
      expect(p.ed25519Verify(pub.slice(0, 31), new Uint8Array([1]), sig)).toBe(false);
      expect(p.ed25519Verify(pub, new Uint8Array([1]), sig.slice(0, 63))).toBe(false);
      expect(p.ed25519Verify(new Uint8Array(32).fill(0xff), new Uint8Array([1]), sig)).toBe(false);
    }
  });
});

describe("native base64", () => {
  it("equals the core's canonical encoder", async () => {
    const { base64 } = await import("../../src/platform/base64.js");
    const { base64Encode } = await import("../../src/core/bytes.js");
    fc.assert(
      fc.property(bytes(100), (data) => {
        expect(base64(data)).toBe(base64Encode(data));
        expect(base64(data.subarray(1))).toBe(base64Encode(data.subarray(1)));
      }),
    );
  });

  it("writes a JSON array of hashes equal to JSON.stringify of the core's encodings", async () => {
    const { base64JsonArray } = await import("../../src/platform/base64.js");
    const { base64Encode } = await import("../../src/core/bytes.js");
    const viaJson = (hs: Uint8Array[]) => JSON.stringify(hs.map(base64Encode));
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 70 }),
        (hs) => {
          // Hashes as views into a larger buffer, as the tree hands them out.
          const views = hs.map((h) => {
            const big = new Uint8Array(40);
            big.set(h, 5);
            return big.subarray(5, 37);
          });
          expect(base64JsonArray(views)).toBe(viaJson(hs));
          expect(JSON.parse(base64JsonArray(views))).toEqual(hs.map(base64Encode));
        },
      ),
    );
    // Mixed lengths fall back to the general path and are still right.
    const mixed = [new Uint8Array(32).fill(1), new Uint8Array(3).fill(2)];
    expect(base64JsonArray(mixed)).toBe(viaJson(mixed));
  });

  it("decodes strictly, exactly as the core's decoder accepts and refuses", async () => {
    const { base64DecodeStrict } = await import("../../src/platform/base64.js");
    const { base64Decode, base64Encode } = await import("../../src/core/bytes.js");
    const outcome = (f: () => Uint8Array) => {
      try {
        return Array.from(f()).join(",");
      } catch (e) {
        return `error ${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
    };
    const same = (text: string) =>
      expect(outcome(() => base64DecodeStrict(text, "x"))).toBe(
        outcome(() => base64Decode(text, "x")),
      );
    fc.assert(
      fc.property(bytes(100), (data) => {
        const text = base64Encode(data);
        same(text);
        same(text.slice(0, -1)); // padding missing
        same(`${text} `);
        same(text.replace(/[+/]/g, "-"));
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 24 }), (t) => {
        same(t);
      }),
    );
    for (const t of ["", "=", "QQ", "QR==", "QQ==", "Q===", "A\nAA", "AAAA\n", "////", "_-_-"])
      same(t);
  });
});
