import { describe, expect, it } from "vitest";
import { base64Decode, utf8Decode, utf8Encode } from "../../src/core/bytes.js";
import { formatCheckpoint, openCheckpoint } from "../../src/core/checkpoint.js";
import {
  COSIGNATURE_SIZE,
  cosignatureLine,
  cosignatureMessage,
  cosignatureTimestamp,
  cosignatureVerifier,
  cosignatureVerifierFromKey,
  cosignerFromKey,
  cosignerFromSeed,
} from "../../src/core/cosignature.js";
import { cryptoProvider } from "../../src/core/crypto.js";
import {
  computeKeyId,
  parseSignerKey,
  SIG_TYPE_ED25519,
  signerFromKey,
  verifierFromKey,
  verifierFromPublicKey,
} from "../../src/core/keys.js";
import { parseNote, signNote, verifyNote } from "../../src/core/note.js";
import { codeOf } from "../helpers/errors.js";
import { reference300 } from "../vectors.js";

const cps = reference300().checkpoints;

const seed = (n: number) => new Uint8Array(32).fill(n);
const cosigner = cosignerFromKey(cps.cosignerSkey, cps.cosignTime);
const cosignerV = cosignatureVerifierFromKey(cps.cosignerVkey);
const logSigner = signerFromKey(cps.logSkey);
const logV = verifierFromKey(cps.logVkey);
const sample =
  "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

describe("cosignatureMessage", () => {
  it("prefixes the header and time lines to the whole checkpoint text", () => {
    expect(utf8Decode(cosignatureMessage(sample, 1679315147))).toBe(
      `cosignature/v1\ntime 1679315147\n${sample}`,
    );
    expect(cosignatureMessage(utf8Encode(sample), 0)).toEqual(
      utf8Encode(`cosignature/v1\ntime 0\n${sample}`),
    );
  });

  it("includes extension lines", () => {
    const ext = `${sample}extension\n`;
    expect(utf8Decode(cosignatureMessage(ext, 5))).toBe(`cosignature/v1\ntime 5\n${ext}`);
  });

  it("refuses times that are not whole seconds in range, and text without a newline", () => {
    for (const t of [-1, 0.5, 2 ** 53, Number.POSITIVE_INFINITY]) {
      expect(
        codeOf(() => cosignatureMessage(sample, t)),
        `${t}`,
      ).toBe("OUT_OF_RANGE");
    }
    expect(codeOf(() => cosignatureMessage(sample.slice(0, -1), 1))).toBe("MALFORMED");
  });
});

describe("reference vector cosignatures", () => {
  it("derives the cosigner's key id with type 0x04", () => {
    const k = parseSignerKey(cps.cosignerSkey);
    expect(cosigner.keyId).toBe(computeKeyId(k.name, 0x04, k.publicKey));
    expect(cosigner.keyId).toBe(cosignerV.keyId);
    expect(cosigner.verifierKey).toBe(cps.cosignerVkey);
  });

  it.each(cps.cosigned)("reproduces the cosignature line at size $treeSize", (v) => {
    const note = parseNote(v.note);
    const line = v.note.slice(v.note.lastIndexOf("— "));
    expect(cosignatureLine(note.text, cosigner)).toBe(line);
    const raw = base64Decode(line.slice(line.indexOf(" ", 2) + 1, -1));
    expect(raw.length).toBe(4 + COSIGNATURE_SIZE);
    expect(cosignatureTimestamp(raw.subarray(4))).toBe(cps.cosignTime);
    // The signature really is Ed25519 over the cosigned message, not over the note text.
    const pub = parseSignerKey(cps.cosignerSkey).publicKey;
    const msg = cosignatureMessage(note.text, cps.cosignTime);
    expect(cryptoProvider().ed25519Verify(pub, msg, raw.subarray(12))).toBe(true);
    expect(cryptoProvider().ed25519Verify(pub, utf8Encode(note.text), raw.subarray(12))).toBe(
      false,
    );
  });

  it.each(cps.cosigned)("verifies as a note signature at size $treeSize", (v) => {
    const verified = verifyNote(v.note, [cosignerV]);
    expect(verified.signatures.map((s) => [s.name, s.timestamp])).toEqual([
      ["witness.example/vectors", cps.cosignTime],
    ]);
  });

  it("does not verify a cosignature moved to another checkpoint", () => {
    const a = parseNote(cps.cosigned[2]!.note);
    const b = parseNote(cps.cosigned[3]!.note);
    const moved = signNote({ text: b.text, signatures: [a.signatures[1]!] }, [logSigner]);
    expect(codeOf(() => openCheckpoint(moved, logV, [cosignerV]))).toBe("BAD_SIGNATURE");
  });

  it("is not a plain Ed25519 signature under either key id", () => {
    const k = parseSignerKey(cps.cosignerSkey);
    const plain = verifierFromPublicKey(k.name, k.publicKey, SIG_TYPE_ED25519);
    expect(plain.keyId).not.toBe(cosignerV.keyId);
    expect(codeOf(() => verifyNote(cps.cosigned[0]!.note, [plain]))).toBe("NO_KNOWN_SIGNATURE");
    const plainWithCosignerId = { name: k.name, keyId: cosignerV.keyId, verify: plain.verify };
    expect(codeOf(() => verifyNote(cps.cosigned[0]!.note, [plainWithCosignerId]))).toBe(
      "BAD_SIGNATURE",
    );
    expect(cosignatureVerifier(k.name, k.publicKey).keyId).toBe(cosignerV.keyId);
  });
});

describe("cosigners", () => {
  it("take the time from the caller, in seconds", () => {
    const c = cosignerFromSeed("w.example", seed(4), 1_700_000_000);
    const text = formatCheckpoint({
      origin: "example.com/log",
      size: 3,
      rootHash: new Uint8Array(32),
      extensions: [],
    });
    const v = verifyNote(signNote(text, [c]), [c.verifier()]);
    expect(v.signatures[0]!.timestamp).toBe(1_700_000_000);
    const later = verifyNote(signNote(text, [c.at(1_700_000_060)]), [c.verifier()]);
    expect(later.signatures[0]!.timestamp).toBe(1_700_000_060);
  });

  it("sign extension lines, so changing one breaks the cosignature", () => {
    const c = cosignerFromSeed("w.example", seed(4), 10);
    const text = `${sample}ext-a\n`;
    const note = signNote(text, [c]);
    expect(verifyNote(note, [c.verifier()]).signatures).toHaveLength(1);
    expect(codeOf(() => verifyNote(note.replace("ext-a", "ext-b"), [c.verifier()]))).toBe(
      "BAD_SIGNATURE",
    );
  });

  it("refuse keys of the wrong type", () => {
    expect(codeOf(() => cosignerFromKey(cps.logSkey, 1))).toBe("BAD_KEY");
    expect(codeOf(() => cosignatureVerifierFromKey(cps.logVkey))).toBe("BAD_KEY");
    expect(codeOf(() => cosignerFromSeed("w.example", seed(4), -5))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => cosignerFromSeed("w example", seed(4), 5))).toBe("BAD_KEY");
  });
});
