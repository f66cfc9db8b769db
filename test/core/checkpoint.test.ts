import { describe, expect, it } from "vitest";
import { base64Decode, base64Encode } from "../../src/core/bytes.js";
import {
  type Checkpoint,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
} from "../../src/core/checkpoint.js";
import { cosignatureVerifierFromKey, cosignerFromKey } from "../../src/core/cosignature.js";
import { signerFromKey, signerFromSeed, verifierFromKey } from "../../src/core/keys.js";
import { parseNote, signNote } from "../../src/core/note.js";
import { EMPTY_ROOT } from "../../src/core/rfc6962.js";
import { codeOf } from "../helpers/errors.js";
import { reference300 } from "../vectors.js";

const vectors = reference300();
const cps = vectors.checkpoints;

const rootOf = (size: number) => {
  const r = vectors.roots[size]!;
  expect(r.treeSize).toBe(size);
  return base64Decode(r.root);
};
const body = (size: number): Checkpoint => ({
  origin: cps.origin,
  size,
  rootHash: rootOf(size),
  extensions: [],
});
const logSigner = signerFromKey(cps.logSkey);
const logV = verifierFromKey(cps.logVkey);
const cosigner = cosignerFromKey(cps.cosignerSkey, cps.cosignTime);
const cosignerV = cosignatureVerifierFromKey(cps.cosignerVkey);

describe("reference vectors (golang.org/x/mod sumdb/note)", () => {
  it("has the expected vector sets", () => {
    expect(cps.signed.map((c) => c.treeSize)).toEqual([0, 1, 256, 300]);
    expect(cps.cosigned.map((c) => c.treeSize)).toEqual([0, 1, 256, 300]);
    expect(logSigner.name).toBe(cps.origin);
  });

  it.each(cps.signed)("reproduces the signed checkpoint of size $treeSize byte for byte", (v) => {
    expect(signNote(formatCheckpoint(body(v.treeSize)), [logSigner])).toBe(v.note);
  });

  it.each(cps.signed)("opens the signed checkpoint of size $treeSize", (v) => {
    const { checkpoint, signatures, unverified } = openCheckpoint(v.note, logV);
    expect(checkpoint.origin).toBe(cps.origin);
    expect(checkpoint.size).toBe(v.treeSize);
    expect(checkpoint.rootHash).toEqual(rootOf(v.treeSize));
    expect(checkpoint.extensions).toEqual([]);
    expect(signatures.map((s) => s.name)).toEqual([cps.origin]);
    expect(unverified).toEqual([]);
  });

  it.each(cps.cosigned)("reproduces the cosigned checkpoint of size $treeSize", (v) => {
    const text = formatCheckpoint(body(v.treeSize));
    expect(signNote(text, [logSigner, cosigner])).toBe(v.note);
    // The same, as a witness does it: add the cosignature to the log-signed note.
    const signed = cps.signed.find((s) => s.treeSize === v.treeSize)!.note;
    expect(signNote(parseNote(signed), [cosigner])).toBe(v.note);
  });

  it.each(cps.cosigned)("opens the cosigned checkpoint of size $treeSize", (v) => {
    const opened = openCheckpoint(v.note, logV, [cosignerV]);
    expect(opened.checkpoint.size).toBe(v.treeSize);
    expect(opened.signatures.map((s) => [s.name, s.timestamp])).toEqual([
      [cps.origin, undefined],
      ["witness.example/vectors", cps.cosignTime],
    ]);
    // Without the cosigner's key the cosignature is ignored, not an error.
    const logOnly = openCheckpoint(v.note, logV);
    expect(logOnly.signatures).toHaveLength(1);
    expect(logOnly.unverified.map((s) => s.name)).toEqual(["witness.example/vectors"]);
  });

  it("has the empty root at size 0", () => {
    expect(parseCheckpoint(parseNote(cps.signed[0]!.note).text).rootHash).toEqual(EMPTY_ROOT);
  });
});

describe("openCheckpoint refusals", () => {
  const note = cps.cosigned[3]!.note;

  it("refuses a changed size or root (BAD_SIGNATURE)", () => {
    const changedSize = note.replace("\n300\n", "\n301\n");
    expect(codeOf(() => openCheckpoint(changedSize, logV))).toBe("BAD_SIGNATURE");
    const root = rootOf(300);
    root[0]! ^= 1;
    const changedRoot = note.replace(base64Encode(rootOf(300)), base64Encode(root));
    expect(codeOf(() => openCheckpoint(changedRoot, logV))).toBe("BAD_SIGNATURE");
  });

  it("refuses a bad witness cosignature when the witness key is given", () => {
    const signed = parseNote(note);
    const sig = signed.signatures[1]!.signature.slice();
    sig[20]! ^= 1;
    const bad = signNote({ text: signed.text, signatures: [signed.signatures[0]!] }, [
      { name: cosigner.name, keyId: cosigner.keyId, sign: () => sig },
    ]);
    expect(codeOf(() => openCheckpoint(bad, logV, [cosignerV]))).toBe("BAD_SIGNATURE");
    expect(openCheckpoint(bad, logV).signatures).toHaveLength(1);
  });

  it("refuses a checkpoint the log did not sign, even if a witness did", () => {
    const text = formatCheckpoint(body(300));
    const witnessOnly = signNote(text, [cosigner]);
    expect(codeOf(() => openCheckpoint(witnessOnly, logV, [cosignerV]))).toBe("NO_KNOWN_SIGNATURE");
    const otherLog = signerFromSeed(cps.origin, new Uint8Array(32).fill(1));
    expect(codeOf(() => openCheckpoint(signNote(text, [otherLog]), logV))).toBe(
      "NO_KNOWN_SIGNATURE",
    );
  });

  it("refuses an origin other than the log key's name", () => {
    const other = signNote(formatCheckpoint({ ...body(1), origin: "example.com/other" }), [
      logSigner,
    ]);
    expect(codeOf(() => openCheckpoint(other, logV))).toBe("MALFORMED");
  });

  it("refuses a signed note whose body is not a checkpoint", () => {
    const notCp = signNote("example.com/vectors\nnot a number\n", [logSigner]);
    expect(codeOf(() => openCheckpoint(notCp, logV))).toBe("MALFORMED");
  });
});

describe("parseCheckpoint / formatCheckpoint", () => {
  const root = base64Encode(rootOf(5));

  it("round-trips extension lines", () => {
    const text = `example.com/log\n5\n${root}\next one\n— not a signature\n`;
    const cp = parseCheckpoint(text);
    expect(cp.extensions).toEqual(["ext one", "— not a signature"]);
    expect(formatCheckpoint(cp)).toBe(text);
  });

  it("accepts sizes up to 2^53-1 and origins that are not URLs", () => {
    const cp = parseCheckpoint(`my log + more\n9007199254740991\n${root}\n`);
    expect(cp.size).toBe(2 ** 53 - 1);
    expect(cp.origin).toBe("my log + more");
  });

  it.each([
    ["no final newline", `o\n5\n${root}`],
    ["two lines", "o\n5\n"],
    ["an empty origin", `\n5\n${root}\n`],
    ["a leading zero", `o\n05\n${root}\n`],
    ["a sign", `o\n+5\n${root}\n`],
    ["a negative size", `o\n-1\n${root}\n`],
    ["a space after the size", `o\n5 \n${root}\n`],
    ["a hex size", `o\n0x5\n${root}\n`],
    ["an empty size", `o\n\n${root}\n`],
    ["a 31-byte root", `o\n5\n${base64Encode(rootOf(5).subarray(1))}\n`],
    ["a 33-byte root", `o\n5\n${base64Encode(new Uint8Array(33))}\n`],
    ["an unpadded root", `o\n5\n${root.replace("=", "")}\n`],
    [
      "a URL-alphabet root",
      `o\n5\n${base64Encode(new Uint8Array(32).fill(0xfb)).replaceAll("+", "-")}\n`,
    ],
    ["an empty extension line", `o\n5\n${root}\n\n`],
    ["a carriage return", `o\r\n5\n${root}\n`],
    ["a tab in an extension", `o\n5\n${root}\na\tb\n`],
  ])("refuses %s (MALFORMED)", (_why, text) => {
    expect(codeOf(() => parseCheckpoint(text))).toBe("MALFORMED");
  });

  it("refuses a size beyond 2^53-1 (OUT_OF_RANGE)", () => {
    expect(codeOf(() => parseCheckpoint(`o\n9007199254740992\n${root}\n`))).toBe("OUT_OF_RANGE");
  });

  it("refuses to write what it could not read", () => {
    const ok = body(5);
    expect(codeOf(() => formatCheckpoint({ ...ok, size: -1 }))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => formatCheckpoint({ ...ok, size: 1.5 }))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => formatCheckpoint({ ...ok, size: 2 ** 53 }))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => formatCheckpoint({ ...ok, rootHash: new Uint8Array(31) }))).toBe(
      "MALFORMED",
    );
    expect(codeOf(() => formatCheckpoint({ ...ok, origin: "" }))).toBe("MALFORMED");
    expect(codeOf(() => formatCheckpoint({ ...ok, origin: "a\nb" }))).toBe("MALFORMED");
    expect(codeOf(() => formatCheckpoint({ ...ok, extensions: [""] }))).toBe("MALFORMED");
    expect(codeOf(() => formatCheckpoint({ ...ok, extensions: ["a\nb"] }))).toBe("MALFORMED");
  });
});
