import { describe, expect, it } from "vitest";
import { base64Decode, base64Encode, utf8Encode } from "../../src/core/bytes.js";
import { formatCheckpoint } from "../../src/core/checkpoint.js";
import { cosignerFromSeed } from "../../src/core/cosignature.js";
import { signerFromKey, signerFromSeed, verifierFromKey } from "../../src/core/keys.js";
import { parseNote, signNote } from "../../src/core/note.js";
import { parsePolicy } from "../../src/core/policy.js";
import {
  formatTlogProof,
  MAX_TLOG_PROOF_HASHES,
  parseTlogProof,
  TLOG_PROOF_HEADER,
  type TlogProof,
  verifyTlogProof,
} from "../../src/core/tlog-proof.js";
import { codeOf } from "../helpers/errors.js";
import { reference300 } from "../vectors.js";

const vectors = reference300();
const cps = vectors.checkpoints;
const logV = verifierFromKey(cps.logVkey);

const checkpointFor = (size: number) => cps.cosigned.find((c) => c.treeSize === size)!.note;
const cases = vectors.inclusion.filter((c) => cps.cosigned.some((s) => s.treeSize === c.treeSize));

function proofFor(c: (typeof cases)[number], extra?: Uint8Array): string {
  const p: TlogProof = {
    index: c.leafIdx,
    proof: c.proof.map((h) => base64Decode(h)),
    checkpoint: checkpointFor(c.treeSize),
    ...(extra === undefined ? {} : { extra }),
  };
  return formatTlogProof(p);
}

const policy = parsePolicy(`log ${cps.logVkey}\nwitness vec ${cps.cosignerVkey}\nquorum vec\n`);
const case150 = cases.find((c) => c.leafIdx === 150 && c.treeSize === 300)!;

describe("reference vector inclusion proofs", () => {
  it("has cases at checkpointed sizes", () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  it.each(cases)("verifies leaf $leafIdx in the checkpoint of size $treeSize", (c) => {
    const text = proofFor(c);
    const r = verifyTlogProof(text, base64Decode(c.leafHash), logV, { policy });
    expect(r.index).toBe(c.leafIdx);
    expect(r.checkpoint.size).toBe(c.treeSize);
    expect(r.checkpoint.rootHash).toEqual(base64Decode(vectors.roots[c.treeSize]!.root));
    expect([...(r.witnesses ?? [])]).toEqual(["vec"]);
    expect(r.signatures.map((s) => [s.name, s.timestamp])).toEqual([
      [cps.origin, undefined],
      ["witness.example/vectors", cps.cosignTime],
    ]);
    expect(r.extra).toBeUndefined();
    // Without a policy only the log signature is required.
    expect(verifyTlogProof(utf8Encode(text), base64Decode(c.leafHash), logV).witnesses).toBe(
      undefined,
    );
  });
});

describe("format", () => {
  it("is the spec's layout", () => {
    const text = proofFor(case150, utf8Encode("age-v1.2.1-darwin-arm64.tar.gz"));
    const lines = text.split("\n");
    expect(lines[0]).toBe("c2sp.org/tlog-proof@v1");
    expect(lines[1]).toBe(`extra ${base64Encode(utf8Encode("age-v1.2.1-darwin-arm64.tar.gz"))}`);
    expect(lines[2]).toBe("index 150");
    expect(lines.slice(3, 3 + case150.proof.length)).toEqual(case150.proof);
    expect(lines[3 + case150.proof.length]).toBe("");
    expect(text.endsWith(`\n\n${checkpointFor(300)}`)).toBe(true);
  });

  it("round-trips with and without extra data", () => {
    for (const extra of [undefined, Uint8Array.of(0), utf8Encode("context")]) {
      const text = proofFor(case150, extra);
      const p = parseTlogProof(text);
      expect(p.extra).toEqual(extra);
      expect(p.index).toBe(150);
      expect(p.proof.map((h) => base64Encode(h))).toEqual(case150.proof);
      expect(p.checkpoint).toBe(checkpointFor(300));
      expect(formatTlogProof(p)).toBe(text);
      const r = verifyTlogProof(text, base64Decode(case150.leafHash), logV);
      expect(r.extra).toEqual(extra);
    }
  });

  it("round-trips an empty proof (a one-leaf tree)", () => {
    const one = cases.find((c) => c.treeSize === 1)!;
    const text = proofFor(one);
    expect(text).toBe(`${TLOG_PROOF_HEADER}\nindex 0\n\n${checkpointFor(1)}`);
    expect(parseTlogProof(text).proof).toEqual([]);
    expect(verifyTlogProof(text, base64Decode(one.leafHash), logV).index).toBe(0);
  });

  it("keeps the checkpoint verbatim, including unknown signatures", () => {
    const extraSig = signNote(parseNote(checkpointFor(300)), [
      signerFromSeed("someone.example", new Uint8Array(32).fill(3)),
    ]);
    const text = formatTlogProof({
      index: 150,
      proof: case150.proof.map((h) => base64Decode(h)),
      checkpoint: extraSig,
    });
    expect(parseTlogProof(text).checkpoint).toBe(extraSig);
    expect(verifyTlogProof(text, base64Decode(case150.leafHash), logV, { policy }).index).toBe(150);
  });
});

describe("tampering", () => {
  const good = proofFor(case150);
  const leaf = base64Decode(case150.leafHash);

  it("refuses a changed index", () => {
    const other = good.replace("\nindex 150\n", "\nindex 151\n");
    expect(codeOf(() => verifyTlogProof(other, leaf, logV))).toBe("PROOF_MISMATCH");
    const beyond = good.replace("\nindex 150\n", "\nindex 300\n");
    expect(codeOf(() => verifyTlogProof(beyond, leaf, logV))).toBe("OUT_OF_RANGE");
    const short = good.replace("\nindex 150\n", "\nindex 299\n"); // a shorter path
    expect(codeOf(() => verifyTlogProof(short, leaf, logV))).toBe("PROOF_LENGTH");
  });

  it("refuses a changed, missing or extra hash", () => {
    const h = base64Decode(case150.proof[2]!);
    h[0]! ^= 1;
    const changed = good.replace(case150.proof[2]!, base64Encode(h));
    expect(codeOf(() => verifyTlogProof(changed, leaf, logV))).toBe("PROOF_MISMATCH");
    const missing = good.replace(`${case150.proof[2]!}\n`, "");
    expect(codeOf(() => verifyTlogProof(missing, leaf, logV))).toBe("PROOF_LENGTH");
    const extra = good.replace(
      `${case150.proof[2]!}\n`,
      `${case150.proof[2]!}\n${case150.proof[2]!}\n`,
    );
    expect(codeOf(() => verifyTlogProof(extra, leaf, logV))).toBe("PROOF_LENGTH");
  });

  it("refuses another leaf", () => {
    const other = base64Decode(vectors.leafHashes[151]!);
    expect(codeOf(() => verifyTlogProof(good, other, logV))).toBe("PROOF_MISMATCH");
  });

  it("refuses a changed checkpoint", () => {
    const cp = checkpointFor(300);
    const root = vectors.roots[300]!.root;
    const forged = good.replace(cp, cp.replace(root, vectors.roots[299]!.root));
    expect(codeOf(() => verifyTlogProof(forged, leaf, logV))).toBe("BAD_SIGNATURE");
    const resized = good.replace(cp, cp.replace("\n300\n", "\n301\n"));
    expect(codeOf(() => verifyTlogProof(resized, leaf, logV))).toBe("BAD_SIGNATURE");
  });

  it("refuses a checkpoint signed by another log key", () => {
    const rogue = signerFromSeed(cps.origin, new Uint8Array(32).fill(9));
    const cp = signNote(parseNote(checkpointFor(300)).text, [rogue]);
    const text = good.replace(checkpointFor(300), cp);
    expect(codeOf(() => verifyTlogProof(text, leaf, logV))).toBe("NO_KNOWN_SIGNATURE");
  });

  it("refuses a valid proof against a checkpoint that misses the witness quorum", () => {
    const signedOnly = cps.signed.find((c) => c.treeSize === 300)!.note;
    const text = good.replace(checkpointFor(300), signedOnly);
    expect(verifyTlogProof(text, leaf, logV).index).toBe(150);
    expect(codeOf(() => verifyTlogProof(text, leaf, logV, { policy }))).toBe("QUORUM_NOT_MET");
    // A rogue "witness" that is not in the policy does not help.
    const rogue = cosignerFromSeed("witness.example/vectors", new Uint8Array(32).fill(4), 5);
    const cosigned = signNote(parseNote(signedOnly), [rogue]);
    const text2 = good.replace(checkpointFor(300), cosigned);
    expect(codeOf(() => verifyTlogProof(text2, leaf, logV, { policy }))).toBe("QUORUM_NOT_MET");
  });

  it("checks the log signature before the inclusion proof", () => {
    const cp = checkpointFor(300);
    const broken = good
      .replace("\nindex 150\n", "\nindex 151\n")
      .replace(cp, cp.replace("\n300\n", "\n301\n"));
    expect(codeOf(() => verifyTlogProof(broken, leaf, logV))).toBe("BAD_SIGNATURE");
  });
});

describe("parse errors", () => {
  const good = proofFor(case150);
  const cp = checkpointFor(300);
  const hashes = `${case150.proof.join("\n")}\n`;

  it.each([
    ["another header", good.replace(TLOG_PROOF_HEADER, "c2sp.org/tlog-proof@v2")],
    ["no header", good.slice(TLOG_PROOF_HEADER.length + 1)],
    ["an index with a leading zero", good.replace("index 150", "index 0150")],
    ["a negative index", good.replace("index 150", "index -1")],
    ["an index without a value", good.replace("index 150", "index")],
    ["a missing index line", good.replace("index 150\n", "")],
    ["an extra line after the index", good.replace("index 150\n", "index 150\nextra AAAA\n")],
    ["an empty extra", good.replace("index 150", "extra \nindex 150")],
    ["unpadded extra", good.replace("index 150", "extra AAA\nindex 150")],
    ["a 31-byte hash", good.replace(case150.proof[0]!, base64Encode(new Uint8Array(31)))],
    ["a hash with a trailing space", good.replace(case150.proof[0]!, `${case150.proof[0]!} `)],
    ["a CRLF line", good.replace("index 150\n", "index 150\r\n")],
    ["no empty line", `${TLOG_PROOF_HEADER}\nindex 150\n${hashes}${cp}`.replace("\n\n", "\n")],
    ["no checkpoint", `${TLOG_PROOF_HEADER}\nindex 150\n${hashes}\n`],
    ["an unsigned checkpoint", `${TLOG_PROOF_HEADER}\nindex 150\n${hashes}\n${parseNote(cp).text}`],
  ])("refuses %s (MALFORMED)", (_why, text) => {
    expect(codeOf(() => parseTlogProof(text))).toBe("MALFORMED");
    expect(codeOf(() => verifyTlogProof(text, base64Decode(case150.leafHash), logV))).toBe(
      "MALFORMED",
    );
  });

  it("refuses invalid UTF-8", () => {
    const bytes = utf8Encode(good);
    const bad = new Uint8Array([...bytes.subarray(0, bytes.length - 3), 0xff, 0x0a]);
    expect(codeOf(() => parseTlogProof(bad))).toBe("MALFORMED");
  });

  it(`refuses more than ${MAX_TLOG_PROOF_HASHES} hashes`, () => {
    const h = `${case150.proof[0]!}\n`;
    const at = `${TLOG_PROOF_HEADER}\nindex 1\n${h.repeat(MAX_TLOG_PROOF_HASHES)}\n${cp}`;
    expect(parseTlogProof(at).proof).toHaveLength(MAX_TLOG_PROOF_HASHES);
    const over = `${TLOG_PROOF_HEADER}\nindex 1\n${h.repeat(MAX_TLOG_PROOF_HASHES + 1)}\n${cp}`;
    expect(codeOf(() => parseTlogProof(over))).toBe("TOO_LARGE");
  });

  it("refuses an index beyond 2^53-1", () => {
    expect(codeOf(() => parseTlogProof(good.replace("index 150", "index 9007199254740992")))).toBe(
      "OUT_OF_RANGE",
    );
  });

  it("refuses to write what it could not read", () => {
    const base: TlogProof = { index: 1, proof: [], checkpoint: cp };
    expect(codeOf(() => formatTlogProof({ ...base, index: -1 }))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => formatTlogProof({ ...base, index: 0.5 }))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => formatTlogProof({ ...base, proof: [new Uint8Array(31)] }))).toBe(
      "MALFORMED",
    );
    expect(codeOf(() => formatTlogProof({ ...base, extra: new Uint8Array(0) }))).toBe("MALFORMED");
    expect(codeOf(() => formatTlogProof({ ...base, checkpoint: parseNote(cp).text }))).toBe(
      "MALFORMED",
    );
    const tooMany = Array.from({ length: MAX_TLOG_PROOF_HASHES + 1 }, () => new Uint8Array(32));
    expect(codeOf(() => formatTlogProof({ ...base, proof: tooMany }))).toBe("TOO_LARGE");
  });

  it("works with a checkpoint that was not cosigned, built here", () => {
    const log = signerFromKey(cps.logSkey);
    const text = formatCheckpoint({
      origin: cps.origin,
      size: 300,
      rootHash: base64Decode(vectors.roots[300]!.root),
      extensions: [],
    });
    const proof = formatTlogProof({
      index: 150,
      proof: case150.proof.map((h) => base64Decode(h)),
      checkpoint: signNote(text, [log]),
    });
    expect(verifyTlogProof(proof, base64Decode(case150.leafHash), logV).checkpoint.size).toBe(300);
  });
});
