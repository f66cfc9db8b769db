import { describe, expect, it } from "vitest";
import { base64Decode, base64Encode, utf8Encode } from "../../src/core/bytes.js";
import {
  type NoteVerifier,
  SIG_TYPE_COSIGNATURE,
  signerFromKey,
  signerFromSeed,
  verifierFromKey,
} from "../../src/core/keys.js";
import {
  formatNote,
  MAX_NOTE_SIGNATURES,
  MAX_NOTE_SIZE,
  parseNote,
  signNote,
  verifyKnownSignatures,
  verifyNote,
} from "../../src/core/note.js";
import { codeOf } from "../helpers/errors.js";
import { goldenNote } from "../vectors.js";

const golden = goldenNote();

const seed = (n: number) => new Uint8Array(32).fill(n);
const peter = signerFromKey(golden.skey);
const peterV = verifierFromKey(golden.vkey);
const enoch = signerFromSeed("EnochRoot", seed(7));
const peterLine = golden.signedNote.slice(golden.text.length + 1);

describe("golden note (golang.org/x/mod sumdb/note)", () => {
  it("signs byte for byte", () => {
    expect(signNote(golden.text, [peter])).toBe(golden.signedNote);
  });

  it("parses text and signature", () => {
    const n = parseNote(golden.signedNote);
    expect(n.text).toBe(golden.text);
    expect(n.signatures).toHaveLength(1);
    expect(n.signatures[0]!.name).toBe("PeterNeumann");
    expect(n.signatures[0]!.keyId).toBe(0xc74f20a3);
    expect(n.signatures[0]!.signature).toHaveLength(64);
    expect(formatNote(n)).toBe(golden.signedNote);
  });

  it("verifies from a string, from bytes and from a parsed note", () => {
    for (const input of [
      golden.signedNote,
      utf8Encode(golden.signedNote),
      parseNote(golden.signedNote),
    ]) {
      const v = verifyNote(input, [peterV]);
      expect(v.text).toBe(golden.text);
      expect(v.signatures.map((s) => [s.name, s.keyId])).toEqual([["PeterNeumann", 0xc74f20a3]]);
      expect(v.signatures[0]!.verifier).toBe(peterV);
      expect(v.signatures[0]!.timestamp).toBeUndefined();
      expect(v.unverified).toEqual([]);
    }
  });
});

describe("tampering", () => {
  it("refuses a flipped byte anywhere in the text", () => {
    const bytes = utf8Encode(golden.signedNote);
    for (let i = 0; i < golden.text.length; i++) {
      const b = bytes.slice();
      b[i]! ^= 0x01;
      // Flipping a newline into 0x0b makes a control character: that is MALFORMED instead.
      const code = codeOf(() => verifyNote(b, [peterV]));
      expect(["BAD_SIGNATURE", "MALFORMED"], `byte ${i}`).toContain(code);
      if (golden.text.charCodeAt(i) !== 0x0a) expect(code, `byte ${i}`).toBe("BAD_SIGNATURE");
    }
  });

  it("refuses a flipped bit in the signature", () => {
    const raw = base64Decode(peterLine.slice("— PeterNeumann ".length, -1));
    for (const i of [4, 20, 67]) {
      const r = raw.slice();
      r[i]! ^= 0x80;
      const note = `${golden.text}\n— PeterNeumann ${base64Encode(r)}\n`;
      expect(
        codeOf(() => verifyNote(note, [peterV])),
        `byte ${i}`,
      ).toBe("BAD_SIGNATURE");
    }
  });

  it("treats a changed key id as an unknown key", () => {
    const raw = base64Decode(peterLine.slice("— PeterNeumann ".length, -1));
    raw[3]! ^= 1;
    const note = `${golden.text}\n— PeterNeumann ${base64Encode(raw)}\n`;
    expect(codeOf(() => verifyNote(note, [peterV]))).toBe("NO_KNOWN_SIGNATURE");
  });

  it("refuses a note when only other keys are trusted", () => {
    expect(codeOf(() => verifyNote(golden.signedNote, [enoch.verifier()]))).toBe(
      "NO_KNOWN_SIGNATURE",
    );
    expect(codeOf(() => verifyNote(golden.signedNote, []))).toBe("NO_KNOWN_SIGNATURE");
    // Same name, different key (so different key id): ignored, not a failure.
    const otherPeter = signerFromSeed("PeterNeumann", seed(3));
    expect(codeOf(() => verifyNote(golden.signedNote, [otherPeter.verifier()]))).toBe(
      "NO_KNOWN_SIGNATURE",
    );
  });

  it("refuses a note whose known key id is claimed by a verifier with another key", () => {
    const impostor: NoteVerifier = {
      name: "PeterNeumann",
      keyId: 0xc74f20a3,
      verify: (m, s) => enoch.verifier().verify(m, s),
    };
    expect(codeOf(() => verifyNote(golden.signedNote, [impostor]))).toBe("BAD_SIGNATURE");
  });

  it("checks every signature line of a known key, not only the first", () => {
    const raw = base64Decode(peterLine.slice("— PeterNeumann ".length, -1));
    raw[10]! ^= 1;
    const bad = `— PeterNeumann ${base64Encode(raw)}\n`;
    expect(codeOf(() => verifyNote(golden.signedNote + bad, [peterV]))).toBe("BAD_SIGNATURE");
    // A repeated good line is verified again and reported once.
    const twice = verifyNote(golden.signedNote + peterLine, [peterV]);
    expect(twice.signatures).toHaveLength(1);
    // ... and does not stop the signatures after it from being checked.
    const enochLine = signNote(golden.text, [enoch]).slice(golden.text.length + 1);
    const three = verifyNote(golden.signedNote + peterLine + enochLine, [peterV, enoch.verifier()]);
    expect(three.signatures.map((s) => s.name)).toEqual(["PeterNeumann", "EnochRoot"]);
  });
});

describe("unknown signatures", () => {
  it("are ignored and reported as unverified", () => {
    const both = signNote(parseNote(golden.signedNote), [enoch]);
    expect(both.startsWith(golden.signedNote)).toBe(true);
    const v = verifyNote(both, [peterV]);
    expect(v.signatures.map((s) => s.name)).toEqual(["PeterNeumann"]);
    expect(v.unverified.map((s) => [s.name, s.keyId])).toEqual([["EnochRoot", enoch.keyId]]);
    const v2 = verifyNote(both, [peterV, enoch.verifier()]);
    expect(v2.signatures.map((s) => s.name)).toEqual(["PeterNeumann", "EnochRoot"]);
  });

  it("are ignored even when malformed signature bytes are well-formed base64", () => {
    const note = `${golden.signedNote}— someone.else AAAAAAA=\n`;
    expect(verifyNote(note, [peterV]).unverified).toHaveLength(1);
  });

  it("do not hide a missing known signature", () => {
    const enochOnly = signNote(golden.text, [enoch]);
    expect(codeOf(() => verifyNote(enochOnly, [peterV]))).toBe("NO_KNOWN_SIGNATURE");
    expect(verifyKnownSignatures(enochOnly, [peterV]).signatures).toEqual([]);
  });
});

describe("ambiguous verifiers", () => {
  it("refuse a note that uses a (name, key id) two verifiers claim", () => {
    const twin = verifierFromKey(golden.vkey);
    expect(codeOf(() => verifyNote(golden.signedNote, [peterV, twin]))).toBe("BAD_KEY");
    // The same verifier listed twice is not ambiguous, and an unused ambiguity is harmless.
    expect(verifyNote(golden.signedNote, [peterV, peterV]).signatures).toHaveLength(1);
    const e = enoch.verifier();
    expect(verifyNote(golden.signedNote, [e, peterV, enoch.verifier()]).signatures).toHaveLength(1);
  });
});

describe("signature count limits", () => {
  const text = "many signers\n";
  const signers = Array.from({ length: MAX_NOTE_SIGNATURES + 1 }, (_, i) =>
    signerFromSeed(`signer${i}.example`, seed(i)),
  );

  it("accepts 17 and up to the limit of signatures", () => {
    expect(MAX_NOTE_SIGNATURES).toBeGreaterThanOrEqual(16);
    const seventeen = signNote(text, signers.slice(0, 17));
    expect(verifyNote(seventeen, [signers[16]!.verifier()]).unverified).toHaveLength(16);
    const full = signNote(text, signers.slice(0, MAX_NOTE_SIGNATURES));
    const v = verifyNote(
      full,
      signers.slice(0, MAX_NOTE_SIGNATURES).map((s) => s.verifier()),
    );
    expect(v.signatures).toHaveLength(MAX_NOTE_SIGNATURES);
  });

  it("refuses one signature over the limit, when parsing and when signing", () => {
    const full = signNote(text, signers.slice(0, MAX_NOTE_SIGNATURES));
    const more = signers[MAX_NOTE_SIGNATURES]!;
    expect(codeOf(() => signNote(parseNote(full), [more]))).toBe("TOO_LARGE");
    const line = signNote(text, [more]).slice(text.length + 1);
    expect(codeOf(() => parseNote(full + line))).toBe("TOO_LARGE");
    expect(codeOf(() => verifyNote(full + line, [more.verifier()]))).toBe("TOO_LARGE");
    const sigs = parseNote(full).signatures;
    expect(codeOf(() => formatNote({ text, signatures: [...sigs, sigs[0]!] }))).toBe("TOO_LARGE");
  });
});

describe("size limit", () => {
  const line = `\n— PeterNeumann ${base64Encode(new Uint8Array(68))}\n`;
  const lineBytes = utf8Encode(line).length;
  const fill = (n: number) => `${"x".repeat(n - 1)}\n`;

  it("accepts a note of exactly MAX_NOTE_SIZE bytes and refuses one byte more", () => {
    const exact = fill(MAX_NOTE_SIZE - lineBytes) + line;
    expect(utf8Encode(exact).length).toBe(MAX_NOTE_SIZE);
    expect(parseNote(exact).signatures).toHaveLength(1);
    expect(parseNote(utf8Encode(exact)).signatures).toHaveLength(1);
    const over = fill(MAX_NOTE_SIZE - lineBytes + 1) + line;
    expect(codeOf(() => parseNote(over))).toBe("TOO_LARGE");
    expect(codeOf(() => parseNote(utf8Encode(over)))).toBe("TOO_LARGE");
  });

  it("counts UTF-8 bytes, not UTF-16 units", () => {
    // "é" is 2 bytes in UTF-8 and 1 unit in UTF-16.
    const half = Math.ceil((MAX_NOTE_SIZE - lineBytes) / 2) + 1;
    const note = `${"é".repeat(half)}\n${line}`;
    expect(note.length).toBeLessThan(MAX_NOTE_SIZE);
    expect(codeOf(() => parseNote(note))).toBe("TOO_LARGE");
  });

  it("refuses to sign a text that would make the note too large", () => {
    expect(codeOf(() => signNote(fill(MAX_NOTE_SIZE), [peter]))).toBe("TOO_LARGE");
  });
});

describe("structure", () => {
  it("splits text and signatures at the last empty line", () => {
    const text = "first paragraph\n\nsecond paragraph\n\n— not a signature line\n";
    const note = signNote(text, [peter]);
    const parsed = parseNote(note);
    expect(parsed.text).toBe(text);
    expect(parsed.signatures).toHaveLength(1);
    expect(verifyNote(note, [peterV]).text).toBe(text);
  });

  it("treats lines before the last empty line as text, even signature-like ones", () => {
    const note = `${golden.signedNote}\n${peterLine}`;
    expect(parseNote(note).text).toBe(golden.signedNote);
    expect(parseNote(note).signatures).toHaveLength(1);
    expect(codeOf(() => verifyNote(note, [peterV]))).toBe("BAD_SIGNATURE");
  });

  it("keeps a text that itself ends with an empty line", () => {
    const text = "ends with a blank line\n\n";
    const note = signNote(text, [peter]);
    expect(parseNote(note).text).toBe(text);
    expect(verifyNote(note, [peterV]).text).toBe(text);
  });

  it.each([
    ["no signature block", golden.text],
    ["an empty signature block", `${golden.text}\n`],
    ["no final newline", golden.signedNote.slice(0, -1)],
    ["a line after the signatures", `${golden.signedNote}Unexpected line.\n`],
    ["a signature line with a hyphen", `${golden.text}\n- PeterNeumann AAAAAAA=\n`],
    ["an em dash without a space", `${golden.text}\n—PeterNeumann AAAAAAA=\n`],
    ["a key name with a space", `${golden.text}\n— Peter Neumann AAAAAAA=\n`],
    ["a key name with a plus", `${golden.text}\n— Peter+Neumann AAAAAAA=\n`],
    ["an empty key name", `${golden.text}\n—  AAAAAAA=\n`],
    ["no signature after the name", `${golden.text}\n— PeterNeumann\n`],
    ["an empty signature", `${golden.text}\n— PeterNeumann \n`],
    ["unpadded base64", `${golden.text}\n— PeterNeumann AAAAAAA\n`],
    ["a two-space separator", `${golden.text}\n— PeterNeumann  AAAAAAA=\n`],
    ["a signature of only a key id", `${golden.text}\n— PeterNeumann AAAAAA==\n`],
  ])("refuses %s", (_why, note) => {
    expect(codeOf(() => parseNote(note))).toBe("MALFORMED");
    expect(codeOf(() => verifyNote(note, [peterV]))).toBe("MALFORMED");
  });
});

describe("characters", () => {
  it.each([
    ["\\r", "\r"],
    ["\\r\\n line ending", "\r\n"],
    ["NUL", "\u0000"],
    ["tab", "\t"],
    ["vertical tab", "\u000b"],
    ["escape", "\u001b"],
    ["DEL", "\u007f"],
  ])("refuses %s in the text", (_why, c) => {
    const bad = `line${c}\n\n${peterLine}`;
    expect(codeOf(() => parseNote(bad))).toBe("MALFORMED");
    expect(codeOf(() => parseNote(utf8Encode(bad)))).toBe("MALFORMED");
    expect(codeOf(() => signNote(`line${c}\n`, [peter]))).toBe("MALFORMED");
  });

  it("refuses a control character in a signature line", () => {
    expect(codeOf(() => parseNote(`${golden.signedNote.slice(0, -1)}\r\n`))).toBe("MALFORMED");
  });

  it("accepts non-ASCII text", () => {
    const text = "Ognuno sta solo sul cuor della terra\ned è subito sera. 😀\n";
    expect(verifyNote(utf8Encode(signNote(text, [peter])), [peterV]).text).toBe(text);
  });

  it.each([
    ["a lone continuation byte", [0x80]],
    ["a truncated sequence", [0xe2, 0x80]],
    ["an overlong encoding of '/'", [0xc0, 0xaf]],
    ["an encoded surrogate", [0xed, 0xa0, 0x80]],
    ["0xff", [0xff]],
  ])("refuses invalid UTF-8: %s", (_why, bad) => {
    const head = utf8Encode("text ");
    const tail = utf8Encode(`\n\n${peterLine}`);
    const bytes = new Uint8Array([...head, ...bad, ...tail]);
    expect(codeOf(() => parseNote(bytes))).toBe("MALFORMED");
  });

  it("refuses a string holding an unpaired surrogate", () => {
    expect(codeOf(() => parseNote(`text \ud800\n\n${peterLine}`))).toBe("MALFORMED");
    expect(codeOf(() => signNote("text \udc00\n", [peter]))).toBe("MALFORMED");
  });
});

describe("signNote", () => {
  it("appends to existing signatures, keeping their order", () => {
    const one = signNote(golden.text, [peter]);
    const two = signNote(parseNote(one), [enoch]);
    expect(two).toBe(`${one}${two.slice(one.length)}`);
    expect(parseNote(two).signatures.map((s) => s.name)).toEqual(["PeterNeumann", "EnochRoot"]);
  });

  it("replaces an existing signature by the same key", () => {
    const stale = {
      text: golden.text,
      signatures: [{ name: "PeterNeumann", keyId: 0xc74f20a3, signature: Uint8Array.of(1, 2) }],
    };
    expect(signNote(stale, [peter])).toBe(golden.signedNote);
  });

  it("refuses text without a final newline, no signers, and invalid signers", () => {
    expect(codeOf(() => signNote("abc", [peter]))).toBe("MALFORMED");
    expect(codeOf(() => signNote(golden.text, []))).toBe("MALFORMED");
    const badName = { name: "bad name", keyId: 1, sign: () => Uint8Array.of(1) };
    expect(codeOf(() => signNote(golden.text, [badName]))).toBe("BAD_KEY");
    const badId = { name: "ok", keyId: 2 ** 32, sign: () => Uint8Array.of(1) };
    expect(codeOf(() => signNote(golden.text, [badId]))).toBe("BAD_KEY");
    expect(codeOf(() => signNote(golden.text, [peter, peter]))).toBe("BAD_KEY");
    const empty = { name: "ok", keyId: 2, sign: () => new Uint8Array(0) };
    expect(codeOf(() => signNote(golden.text, [empty]))).toBe("MALFORMED");
  });

  it("carries the cosignature timestamp into verified signatures", () => {
    const w = signerFromSeed("witness.example", seed(5), SIG_TYPE_COSIGNATURE, 1_700_000_123);
    const note = signNote(golden.signedNote.slice(0, golden.text.length), [peter, w]);
    const v = verifyNote(note, [peterV, verifierFromKey(w.verifierKey)]);
    expect(v.signatures.map((s) => s.timestamp)).toEqual([undefined, 1_700_000_123]);
  });
});

describe("formatNote", () => {
  it("refuses notes it could not parse back", () => {
    const sig = { name: "a", keyId: 1, signature: Uint8Array.of(1) };
    expect(codeOf(() => formatNote({ text: "x\n", signatures: [] }))).toBe("MALFORMED");
    expect(codeOf(() => formatNote({ text: "x", signatures: [sig] }))).toBe("MALFORMED");
    expect(codeOf(() => formatNote({ text: "x\n", signatures: [{ ...sig, name: "a b" }] }))).toBe(
      "MALFORMED",
    );
    expect(codeOf(() => verifyNote({ text: "x\r\n", signatures: [sig] }, [peterV]))).toBe(
      "MALFORMED",
    );
    expect(formatNote({ text: "x\n", signatures: [sig] })).toBe("x\n\n— a AAAAAQE=\n");
  });
});
