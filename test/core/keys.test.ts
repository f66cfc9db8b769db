import { describe, expect, it } from "vitest";
import {
  base64Decode,
  base64Encode,
  concatBytes,
  hexEncode,
  putUint64,
  utf8Encode,
} from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { isVellumError } from "../../src/core/errors.js";
import {
  COSIGNATURE_SIZE,
  computeKeyId,
  cosignatureMessage,
  cosignatureTimestamp,
  formatKeyId,
  formatSignerKey,
  formatVerifierKey,
  generateKey,
  isValidKeyName,
  parseSignerKey,
  parseVerifierKey,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  signerFromKey,
  signerFromSeed,
  verifierFromKey,
  verifierFromPublicKey,
} from "../../src/core/keys.js";
import { codeOf } from "../helpers/errors.js";
import { goldenNote, reference300 } from "../vectors.js";

const golden = goldenNote();
const cps = reference300().checkpoints;

const seed = (n: number) => new Uint8Array(32).fill(n);

describe("key ids", () => {
  it("derives the golden key id from name, type 0x01 and public key", () => {
    const k = parseVerifierKey(golden.vkey);
    expect(k.name).toBe("PeterNeumann");
    expect(k.type).toBe(SIG_TYPE_ED25519);
    expect(k.keyId).toBe(0xc74f20a3);
    expect(computeKeyId("PeterNeumann", 0x01, k.publicKey)).toBe(0xc74f20a3);
    // The rule spelled out: SHA-256(name || 0x0A || type || key)[:4], big-endian.
    const digest = sha256(
      concatBytes(utf8Encode("PeterNeumann"), Uint8Array.of(0x0a, 0x01), k.publicKey),
    );
    expect(formatKeyId(k.keyId)).toBe(hexEncode(digest.subarray(0, 4)));
  });

  it("uses the type byte, so a cosigner key id differs from the Ed25519 one", () => {
    const k = parseVerifierKey(cps.cosignerVkey);
    expect(k.type).toBe(SIG_TYPE_COSIGNATURE);
    expect(k.keyId).toBe(computeKeyId(k.name, 0x04, k.publicKey));
    expect(k.keyId).not.toBe(computeKeyId(k.name, 0x01, k.publicKey));
  });

  it("formats key ids as 8 lowercase hex digits, including high and zero ids", () => {
    expect(formatKeyId(0)).toBe("00000000");
    expect(formatKeyId(0xffffffff)).toBe("ffffffff");
    expect(formatKeyId(0xc74f20a3)).toBe("c74f20a3");
    expect(codeOf(() => formatKeyId(2 ** 32))).toBe("BAD_KEY");
    expect(codeOf(() => formatKeyId(-1))).toBe("BAD_KEY");
  });
});

describe("key names", () => {
  it("accepts URL-like and non-ASCII names", () => {
    for (const n of ["example.com/log", "PeterNeumann", "ünïcødé/ключ", "😀", "a=b/c"]) {
      expect(isValidKeyName(n), n).toBe(true);
    }
  });

  it("refuses empty names, '+', any Unicode space and control characters", () => {
    const bad = [
      "",
      "a+b",
      "a b",
      "a\tb",
      "a\nb",
      "a\rb",
      "a\u000bb",
      "a\u0085b",
      "a\u00a0b",
      "a\u1680b",
      "a\u2003b",
      "a\u2028b",
      "a\u3000b",
      "a\u0001b",
      "a\u007fb",
      "a\ud800b",
    ];
    for (const n of bad) expect(isValidKeyName(n), JSON.stringify(n)).toBe(false);
  });
});

describe("verifier keys", () => {
  it("round-trips the golden verifier key", () => {
    const k = parseVerifierKey(golden.vkey);
    expect(formatVerifierKey(k)).toBe(golden.vkey);
  });

  it("round-trips the vector log and cosigner keys", () => {
    for (const vkey of [cps.logVkey, cps.cosignerVkey]) {
      expect(formatVerifierKey(parseVerifierKey(vkey))).toBe(vkey);
    }
  });

  it.each(golden.badVkeys)("refuses $why", ({ vkey }) => {
    expect(codeOf(() => parseVerifierKey(vkey))).toBe("BAD_KEY");
    expect(codeOf(() => verifierFromKey(vkey))).toBe("BAD_KEY");
  });

  it("refuses every truncation and every single-character change of the golden key", () => {
    const v = golden.vkey;
    for (let i = 0; i <= v.length; i++) {
      for (let j = i + 1; j <= v.length; j++) {
        if (i === 0 && j === v.length) continue;
        expect(
          codeOf(() => parseVerifierKey(v.slice(i, j))),
          v.slice(i, j),
        ).toBe("BAD_KEY");
      }
    }
    for (let i = 0; i < v.length; i++) {
      const m = v.slice(0, i) + String.fromCharCode(v.charCodeAt(i) + 1) + v.slice(i + 1);
      expect(
        codeOf(() => parseVerifierKey(m)),
        m,
      ).toBe("BAD_KEY");
    }
  });

  it("refuses an uppercase key id, a mismatched key id and an unknown type", () => {
    expect(codeOf(() => parseVerifierKey(golden.vkey.replace("c74f20a3", "C74F20A3")))).toBe(
      "BAD_KEY",
    );
    expect(codeOf(() => parseVerifierKey(golden.vkey.replace("c74f20a3", "c74f20a4")))).toBe(
      "BAD_KEY",
    );
    // Type 0x02 with a key id computed for it: only the type is wrong.
    const pub = parseVerifierKey(golden.vkey).publicKey;
    const id = formatKeyId(computeKeyId("PeterNeumann", 0x02, pub));
    const t2 = `PeterNeumann+${id}+${base64Encode(concatBytes(Uint8Array.of(2), pub))}`;
    expect(codeOf(() => parseVerifierKey(t2))).toBe("BAD_KEY");
  });

  it("refuses a key id computed with the wrong type's rule", () => {
    const k = parseVerifierKey(cps.cosignerVkey);
    const wrongId = formatKeyId(computeKeyId(k.name, 0x01, k.publicKey));
    const text = cps.cosignerVkey.replace(formatKeyId(k.keyId), wrongId);
    expect(codeOf(() => parseVerifierKey(text))).toBe("BAD_KEY");
  });

  it("refuses bad names and non-canonical base64", () => {
    const pub = parseVerifierKey(golden.vkey).publicKey;
    expect(codeOf(() => formatVerifierKey({ name: "a b", type: 1, publicKey: pub }))).toBe(
      "BAD_KEY",
    );
    expect(codeOf(() => formatVerifierKey({ name: "ab", type: 1, publicKey: pub.slice(1) }))).toBe(
      "BAD_KEY",
    );
    expect(codeOf(() => parseVerifierKey(`${golden.vkey}=`))).toBe("BAD_KEY");
    expect(codeOf(() => parseVerifierKey(`${golden.vkey} `))).toBe("BAD_KEY");
  });
});

describe("signer keys", () => {
  it("parses the golden signer key and derives the golden public key", () => {
    const s = parseSignerKey(golden.skey);
    const v = parseVerifierKey(golden.vkey);
    expect(s.name).toBe(v.name);
    expect(s.keyId).toBe(v.keyId);
    expect(s.publicKey).toEqual(v.publicKey);
    expect(formatSignerKey(s)).toBe(golden.skey);
  });

  it("derives the vector verifier keys from the vector signer keys", () => {
    const log = parseSignerKey(cps.logSkey);
    expect(log.type).toBe(SIG_TYPE_ED25519);
    expect(formatVerifierKey(log)).toBe(cps.logVkey);
    const cosigner = parseSignerKey(cps.cosignerSkey);
    expect(cosigner.type).toBe(SIG_TYPE_COSIGNATURE);
    expect(formatVerifierKey(cosigner)).toBe(cps.cosignerVkey);
  });

  it("generates the golden key pair from its seed", () => {
    const s = parseSignerKey(golden.skey);
    expect(generateKey("PeterNeumann", s.seed)).toEqual({
      signerKey: golden.skey,
      verifierKey: golden.vkey,
    });
    const c = parseSignerKey(cps.cosignerSkey);
    expect(generateKey(c.name, c.seed, SIG_TYPE_COSIGNATURE)).toEqual({
      signerKey: cps.cosignerSkey,
      verifierKey: cps.cosignerVkey,
    });
  });

  it("refuses every truncation and every single-character change, never quoting the key", () => {
    const k = golden.skey;
    const secret = k.slice(k.lastIndexOf("+") + 1);
    const refuse = (text: string) => {
      try {
        parseSignerKey(text);
      } catch (e) {
        expect(isVellumError(e, "BAD_KEY")).toBe(true);
        expect((e as Error).message).not.toContain(secret.slice(4, 20));
        return;
      }
      throw new Error(`accepted ${text}`);
    };
    for (let i = 0; i <= k.length; i++) {
      for (let j = i + 1; j <= k.length; j++) if (i !== 0 || j !== k.length) refuse(k.slice(i, j));
    }
    for (let i = 0; i < k.length; i++) {
      refuse(k.slice(0, i) + String.fromCharCode(k.charCodeAt(i) + 1) + k.slice(i + 1));
    }
  });

  it("refuses a signer key whose key id belongs to another seed", () => {
    const other = generateKey("PeterNeumann", seed(9)).signerKey;
    const id = other.split("+")[3]!;
    expect(codeOf(() => parseSignerKey(golden.skey.replace("c74f20a3", id)))).toBe("BAD_KEY");
  });

  it("refuses seeds of the wrong length", () => {
    expect(codeOf(() => signerFromSeed("a", new Uint8Array(31)))).toBe("BAD_KEY");
    expect(codeOf(() => formatSignerKey({ name: "a", type: 1, seed: new Uint8Array(33) }))).toBe(
      "BAD_KEY",
    );
  });
});

describe("Ed25519 signers and verifiers", () => {
  const message = utf8Encode("hello\n");

  it("signs the golden text exactly like Go's sumdb/note", () => {
    const signer = signerFromKey(golden.skey);
    const line = golden.signedNote.slice(golden.text.length + 1);
    const b64 = line.slice("— PeterNeumann ".length, -1);
    const want = base64Decode(b64);
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(signer.sign(utf8Encode(golden.text))).toEqual(want.subarray(4));
    expect(signer.verifierKey).toBe(golden.vkey);
  });

  it("verifies its own signatures and refuses corrupted ones", () => {
    const signer = signerFromSeed("example.com/a", seed(1));
    const v = verifierFromKey(signer.verifierKey);
    expect(v.name).toBe("example.com/a");
    expect(v.keyId).toBe(signer.keyId);
    const sig = signer.sign(message);
    expect(sig.length).toBe(64);
    expect(v.verify(message, sig)).toBe(true);
    expect(signer.verifier().verify(message, sig)).toBe(true);
    const bad = sig.slice();
    bad[10]! ^= 1;
    expect(v.verify(message, bad)).toBe(false);
    expect(v.verify(utf8Encode("hellp\n"), sig)).toBe(false);
    expect(v.verify(message, sig.subarray(0, 63))).toBe(false);
    expect(v.verify(message, concatBytes(sig, Uint8Array.of(0)))).toBe(false);
    expect(v.signatureTimestamp).toBeUndefined();
  });

  it("does not accept a signature by another key", () => {
    const a = signerFromSeed("n", seed(1));
    const b = signerFromSeed("n", seed(2));
    expect(a.keyId).not.toBe(b.keyId);
    expect(b.verifier().verify(message, a.sign(message))).toBe(false);
  });
});

describe("cosignature (type 0x04) signers and verifiers", () => {
  const text = utf8Encode("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");

  it("needs an explicit time", () => {
    expect(
      codeOf(() => signerFromSeed("w", seed(3), SIG_TYPE_COSIGNATURE, undefined as never)),
    ).toBe("OUT_OF_RANGE");
    expect(codeOf(() => signerFromKey(cps.cosignerSkey))).toBe("OUT_OF_RANGE");
    for (const t of [-1, 1.5, 2 ** 53, Number.NaN]) {
      expect(
        codeOf(() => signerFromSeed("w", seed(3), SIG_TYPE_COSIGNATURE, t)),
        `${t}`,
      ).toBe("OUT_OF_RANGE");
    }
  });

  it("writes the big-endian time before a signature over the cosigned message", () => {
    const c = signerFromSeed("w.example", seed(3), SIG_TYPE_COSIGNATURE, 1_700_000_000);
    expect(c.keyId).toBe(computeKeyId("w.example", 0x04, c.publicKey));
    const sig = c.sign(text);
    expect(sig.length).toBe(COSIGNATURE_SIZE);
    const time = new Uint8Array(8);
    putUint64(time, 0, 1_700_000_000);
    expect(sig.subarray(0, 8)).toEqual(time);
    const msg = cosignatureMessage(text, 1_700_000_000);
    expect(
      verifierFromPublicKey("w.example", c.publicKey, SIG_TYPE_ED25519).verify(
        msg,
        sig.subarray(8),
      ),
    ).toBe(true);
  });

  it("verifies through verifierFromKey, exposing the timestamp", () => {
    const c = signerFromSeed("w.example", seed(3), SIG_TYPE_COSIGNATURE, 1234);
    const v = verifierFromKey(c.verifierKey);
    const sig = c.sign(text);
    expect(v.verify(text, sig)).toBe(true);
    expect(v.signatureTimestamp?.(sig)).toBe(1234);
    expect(cosignatureTimestamp(sig)).toBe(1234);
  });

  it("refuses a changed time, a changed text, a wrong length and a huge time", () => {
    const c = signerFromSeed("w.example", seed(3), SIG_TYPE_COSIGNATURE, 1234);
    const v = c.verifier();
    const sig = c.sign(text);
    const otherTime = sig.slice();
    otherTime[7]! ^= 1;
    expect(v.verify(text, otherTime)).toBe(false);
    const t2 = text.slice();
    t2[0]! ^= 1;
    expect(v.verify(t2, sig)).toBe(false);
    expect(v.verify(text, sig.subarray(0, 71))).toBe(false);
    const huge = sig.slice();
    huge.set([0x00, 0x20, 0, 0, 0, 0, 0, 0], 0); // 2^53
    expect(v.verify(text, huge)).toBe(false);
    expect(cosignatureTimestamp(huge)).toBeUndefined();
    expect(v.verify(text.subarray(0, text.length - 1), sig)).toBe(false);
  });

  it("rebinds to another time without changing the key", () => {
    const c = signerFromSeed("w.example", seed(3), SIG_TYPE_COSIGNATURE, 1);
    const d = c.at(2);
    expect(d.keyId).toBe(c.keyId);
    expect(d.time).toBe(2);
    expect(d.sign(text)).not.toEqual(c.sign(text));
    expect(c.verifier().verify(text, d.sign(text))).toBe(true);
  });
});
