import { describe, expect, it } from "vitest";
import { utf8Encode } from "../../src/core/bytes.js";
import { formatCheckpoint } from "../../src/core/checkpoint.js";
import { cosignerFromSeed } from "../../src/core/cosignature.js";
import { isVellumError, VellumError } from "../../src/core/errors.js";
import {
  generateKey,
  SIG_TYPE_COSIGNATURE,
  signerFromKey,
  signerFromSeed,
} from "../../src/core/keys.js";
import { parseNote, signNote } from "../../src/core/note.js";
import {
  checkQuorum,
  formatPolicy,
  logVerifiers,
  MAX_POLICY_ENTRIES,
  type Policy,
  parsePolicy,
  QUORUM_NONE,
  quorumSatisfied,
  verifyQuorum,
  witnessVerifiers,
} from "../../src/core/policy.js";
import { codeOf } from "../helpers/errors.js";
import { reference300 } from "../vectors.js";

const cps = reference300().checkpoints;

const seed = (n: number) => new Uint8Array(32).fill(n);
const witnessSeed = (i: number) => seed(100 + i);
const wkey = (i: number) => generateKey(`w${i}.example`, witnessSeed(i), SIG_TYPE_COSIGNATURE);
const W = Array.from({ length: 6 }, (_, i) => wkey(i).verifierKey);
const logKey = cps.logVkey;

// The example from the tlog-policy spec, with real keys.
const example = `log ${logKey}

witness X1 ${W[0]}
witness X2 ${W[1]}
witness X3 ${W[2]}
group X-witnesses 2 X1 X2 X3

witness Y1 ${W[3]}
witness Y2 ${W[4]}
witness Y3 ${W[5]}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
`;

describe("parsePolicy", () => {
  it("parses the spec's example", () => {
    const p = parsePolicy(example);
    expect(p.logs.map((l) => l.vkey)).toEqual([logKey]);
    expect(p.logs[0]!.key.name).toBe("example.com/vectors");
    expect(p.witnesses.map((w) => w.name)).toEqual(["X1", "X2", "X3", "Y1", "Y2", "Y3"]);
    expect(p.witnesses[3]!.key.name).toBe("w3.example");
    expect(p.groups).toEqual([
      { name: "X-witnesses", threshold: 2, members: ["X1", "X2", "X3"] },
      { name: "Y-witnesses", threshold: "any", members: ["Y1", "Y2", "Y3"] },
      { name: "X-and-Y", threshold: "all", members: ["X-witnesses", "Y-witnesses"] },
    ]);
    expect(p.quorum).toBe("X-and-Y");
    expect(parsePolicy(utf8Encode(example))).toEqual(p);
  });

  it("accepts comments, blank lines, tabs, surrounding whitespace and URLs", () => {
    const p = parsePolicy(
      `# a comment\n   # an indented comment\n\n \t \nlog\t${logKey}   https://log.example/\n` +
        `\t witness  w0 ${W[0]} https://w0.example/prefix \t\nquorum w0   \n`,
    );
    expect(p.logs[0]!.url).toBe("https://log.example/");
    expect(p.witnesses[0]!.url).toBe("https://w0.example/prefix");
    expect(p.quorum).toBe("w0");
  });

  it("accepts a policy with only `quorum none`, and names that are opaque", () => {
    expect(parsePolicy("quorum none\n")).toEqual({
      logs: [],
      witnesses: [],
      groups: [],
      quorum: QUORUM_NONE,
    });
    const p = parsePolicy(
      `witness K ${W[0]}\nwitness \u212a ${W[1]}\ngroup all all K \u212a\nquorum all\n`,
    );
    expect(p.witnesses.map((w) => w.name)).toEqual(["K", "\u212a"]);
  });

  it("supports at least 32 logs, witnesses and groups", () => {
    const lines: string[] = [];
    for (let i = 0; i < 32; i++) {
      lines.push(`log ${generateKey(`log${i}.example`, seed(i)).verifierKey}`);
      lines.push(`witness w${i} ${wkey(10 + i).verifierKey}`);
      lines.push(`group g${i} any w${i}`);
    }
    lines.push(`group top 32 ${Array.from({ length: 32 }, (_, i) => `g${i}`).join(" ")}`);
    lines.push("quorum top");
    const p = parsePolicy(`${lines.join("\n")}\n`);
    expect([p.logs.length, p.witnesses.length, p.groups.length]).toEqual([32, 32, 33]);
  });

  it.each([
    ["an unknown keyword", "logs KEY\nquorum none\n"],
    ["an uppercase keyword", "QUORUM none\n"],
    ["no quorum line", `log ${logKey}\n`],
    ["two quorum lines", "quorum none\nquorum none\n"],
    ["a quorum with two names", "quorum none none\n"],
    ["an undefined quorum", "quorum X\n"],
    ["a quorum defined only later", `quorum w\nwitness w ${W[0]}\n`],
    ["a log line without a key", "log\nquorum none\n"],
    ["a log line with too many fields", `log ${logKey} https://a/ extra\nquorum none\n`],
    ["a trailing comment (not in the spec)", `log ${logKey} # main log\nquorum none\n`],
    ["a witness without a key", "witness w\nquorum none\n"],
    ["a witness named none", `witness none ${W[0]}\nquorum none\n`],
    ["a duplicate witness name", `witness w ${W[0]}\nwitness w ${W[1]}\nquorum w\n`],
    ["a group named like a witness", `witness w ${W[0]}\ngroup w any w\nquorum w\n`],
    ["a group named none", `witness w ${W[0]}\ngroup none any w\nquorum w\n`],
    ["a group without members", `witness w ${W[0]}\ngroup g any\nquorum g\n`],
    ["a group with an undefined member", `witness w ${W[0]}\ngroup g any w v\nquorum g\n`],
    ["a forward reference", `group g any w\nwitness w ${W[0]}\nquorum g\n`],
    ["a group containing itself (a cycle)", `witness w ${W[0]}\ngroup g any w g\nquorum g\n`],
    ["none as a member", `witness w ${W[0]}\ngroup g any w none\nquorum g\n`],
    ["a member listed twice", `witness w ${W[0]}\ngroup g all w w\nquorum g\n`],
    [
      "a member of two groups",
      `witness w ${W[0]}\nwitness v ${W[1]}\ngroup g any w\ngroup h any w v\nquorum h\n`,
    ],
    ["a threshold with a leading zero", `witness w ${W[0]}\ngroup g 01 w\nquorum g\n`],
    ["a negative threshold", `witness w ${W[0]}\ngroup g -1 w\nquorum g\n`],
    ["a word threshold", `witness w ${W[0]}\ngroup g some w\nquorum g\n`],
    ["a duplicate log key", `log ${logKey}\nlog ${logKey}\nquorum none\n`],
    [
      "the same witness public key under two names",
      `witness a ${W[0]}\nwitness b ${generateKey("other.name", witnessSeed(0), SIG_TYPE_COSIGNATURE).verifierKey}\nquorum a\n`,
    ],
    ["a carriage return", `log ${logKey}\r\nquorum none\n`],
    ["a NUL byte", "quorum none\u0000\n"],
    ["no final newline", "quorum none"],
  ])("refuses %s (MALFORMED)", (_why, text) => {
    expect(codeOf(() => parsePolicy(text))).toBe("MALFORMED");
  });

  it.each([
    ["k = 0", `witness w ${W[0]}\ngroup g 0 w\nquorum g\n`],
    ["k > n", `witness w ${W[0]}\nwitness v ${W[1]}\ngroup g 3 w v\nquorum g\n`],
  ])("refuses a threshold out of range: %s", (_why, text) => {
    expect(codeOf(() => parsePolicy(text))).toBe("OUT_OF_RANGE");
  });

  it.each([
    ["a malformed key", "log example.com+00000000+AAAA\nquorum none\n"],
    [
      "a witness key of type 0x01",
      `witness w ${generateKey("w", seed(1)).verifierKey}\nquorum w\n`,
    ],
    ["a log key of type 0x04", `log ${cps.cosignerVkey}\nquorum none\n`],
    ["a key with a wrong key id", `log ${logKey.replace("+1", "+2")}\nquorum none\n`],
  ])("refuses %s (BAD_KEY)", (_why, text) => {
    expect(codeOf(() => parsePolicy(text))).toBe("BAD_KEY");
  });

  it("refuses invalid UTF-8 and over-large input", () => {
    const bytes = new Uint8Array([...utf8Encode("# "), 0xff, ...utf8Encode("\nquorum none\n")]);
    expect(codeOf(() => parsePolicy(bytes))).toBe("MALFORMED");
    expect(codeOf(() => parsePolicy(`#${"x".repeat(70_000)}\nquorum none\n`))).toBe("TOO_LARGE");
  });

  it(`refuses more than ${MAX_POLICY_ENTRIES} groups`, () => {
    const lines = [`witness w ${W[0]}`, "group g0 any w"];
    for (let i = 1; i <= MAX_POLICY_ENTRIES; i++) lines.push(`group g${i} any g${i - 1}`);
    lines.push("quorum g0");
    expect(codeOf(() => parsePolicy(`${lines.join("\n")}\n`))).toBe("TOO_LARGE");
    lines.splice(-2, 1);
    expect(parsePolicy(`${lines.join("\n")}\n`).groups).toHaveLength(MAX_POLICY_ENTRIES);
  });

  it("says which line is wrong", () => {
    try {
      parsePolicy(`quorum none\n\nbogus\n`);
    } catch (e) {
      expect(e).toBeInstanceOf(VellumError);
      expect((e as Error).message).toMatch(/line 3/);
      return;
    }
    throw new Error("accepted");
  });
});

describe("formatPolicy", () => {
  it("writes a canonical form that parses back to the same policy", () => {
    const p = parsePolicy(example);
    const text = formatPolicy(p);
    expect(parsePolicy(text)).toEqual(p);
    expect(formatPolicy(parsePolicy(text))).toBe(text);
    expect(text.endsWith("quorum X-and-Y\n")).toBe(true);
  });

  it("writes URLs and refuses what it could not parse back", () => {
    const text = formatPolicy({
      logs: [{ vkey: logKey, url: "https://log.example/" }],
      witnesses: [{ name: "w", vkey: W[0]!, url: "https://w.example/" }],
      groups: [],
      quorum: "w",
    });
    expect(text).toBe(
      `log ${logKey} https://log.example/\nwitness w ${W[0]} https://w.example/\nquorum w\n`,
    );
    const base = parsePolicy(text);
    expect(codeOf(() => formatPolicy({ ...base, quorum: "nobody" }))).toBe("MALFORMED");
    expect(codeOf(() => formatPolicy({ ...base, witnesses: [{ name: "a b", vkey: W[0]! }] }))).toBe(
      "MALFORMED",
    );
    expect(
      codeOf(() =>
        formatPolicy({ ...base, groups: [{ name: "g", threshold: 2, members: ["w"] }] }),
      ),
    ).toBe("OUT_OF_RANGE");
  });
});

describe("quorumSatisfied", () => {
  const p = parsePolicy(example);
  const cases: [string[], boolean][] = [
    [[], false],
    [["X1", "X2"], false],
    [["Y1"], false],
    [["X1", "Y3"], false],
    [["X1", "X2", "Y1"], true],
    [["X1", "X3", "Y2", "Y3"], true],
    [["X1", "X2", "X3", "Y1", "Y2", "Y3"], true],
    [["X1", "X2", "X-witnesses", "Y-witnesses"], false], // group names are not witnesses
  ];
  it.each(cases)("%j -> %s", (names, want) => {
    expect(quorumSatisfied(p, new Set(names))).toBe(want);
    expect(codeOf(() => checkQuorum(p, new Set(names)))).toBe(want ? "no error" : "QUORUM_NOT_MET");
  });

  it("is always met with quorum none, and by the named witness alone", () => {
    expect(quorumSatisfied(parsePolicy("quorum none\n"), new Set())).toBe(true);
    const single = parsePolicy(`witness w ${W[0]}\nwitness v ${W[1]}\nquorum w\n`);
    expect(quorumSatisfied(single, new Set(["v"]))).toBe(false);
    expect(quorumSatisfied(single, new Set(["w"]))).toBe(true);
  });

  it("names what is missing", () => {
    try {
      checkQuorum(p, new Set(["X1", "X2"]));
    } catch (e) {
      expect(isVellumError(e, "QUORUM_NOT_MET")).toBe(true);
      expect((e as Error).message).toContain("Y-witnesses");
      expect((e as Error).message).toContain("Y1");
      expect((e as Error).message).not.toContain("X3");
      return;
    }
    throw new Error("quorum met");
  });
});

describe("verifyQuorum", () => {
  const p = parsePolicy(example);
  const logSigner = signerFromKey(cps.logSkey);
  const text = formatCheckpoint({
    origin: "example.com/vectors",
    size: 7,
    rootHash: new Uint8Array(32).fill(7),
    extensions: [],
  });
  const cosign = (...idx: number[]) =>
    signNote(text, [
      logSigner,
      ...idx.map((i) => cosignerFromSeed(`w${i}.example`, witnessSeed(i), 1_700_000_000 + i)),
    ]);

  it("returns the policy names of the witnesses that cosigned", () => {
    const r = verifyQuorum(p, cosign(0, 2, 4));
    expect([...r.witnesses].sort()).toEqual(["X1", "X3", "Y2"]);
    expect(r.signatures.map((s) => s.timestamp)).toEqual([
      1_700_000_000, 1_700_000_002, 1_700_000_004,
    ]);
  });

  it("throws QUORUM_NOT_MET when too few witnesses cosigned", () => {
    expect(codeOf(() => verifyQuorum(p, cosign(0, 1)))).toBe("QUORUM_NOT_MET");
    expect(codeOf(() => verifyQuorum(p, cosign()))).toBe("QUORUM_NOT_MET");
    expect(codeOf(() => verifyQuorum(p, cosign(0, 3)))).toBe("QUORUM_NOT_MET");
  });

  it("does not count cosignatures by keys outside the policy", () => {
    const outsider = cosignerFromSeed("w1.example", seed(55), 1);
    const note = signNote(parseNote(cosign(0, 3)), [outsider]);
    expect(codeOf(() => verifyQuorum(p, note))).toBe("QUORUM_NOT_MET");
  });

  it("refuses a broken cosignature by a policy witness", () => {
    const note = parseNote(cosign(0, 1, 3));
    const sigs = note.signatures.map((s, i) => {
      if (i !== 2) return s;
      const b = s.signature.slice();
      b[30]! ^= 1;
      return { ...s, signature: b };
    });
    expect(codeOf(() => verifyQuorum(p, { text: note.text, signatures: sigs }))).toBe(
      "BAD_SIGNATURE",
    );
  });

  it("does not count a plain Ed25519 signature by a witness's key", () => {
    const plain = signerFromSeed("w0.example", witnessSeed(0));
    const note = signNote(text, [logSigner, plain]);
    expect(codeOf(() => verifyQuorum(parsePolicy(`witness X ${W[0]}\nquorum X\n`), note))).toBe(
      "QUORUM_NOT_MET",
    );
  });

  it("accepts the reference vector cosignature with a one-witness policy", () => {
    const one: Policy = parsePolicy(
      `log ${cps.logVkey}\nwitness vec ${cps.cosignerVkey}\nquorum vec\n`,
    );
    for (const v of cps.cosigned) expect([...verifyQuorum(one, v.note).witnesses]).toEqual(["vec"]);
    expect(logVerifiers(one).map((v) => v.name)).toEqual(["example.com/vectors"]);
    expect([...witnessVerifiers(one).keys()]).toEqual(["vec"]);
  });
});
