/**
 * Known answers for the Merkle core from independent implementations: the transparency-dev/merkle
 * proof cases (valid accepted, every mutation rejected), the RFC 6962 reference tree, and the
 * roots and proofs of reference-vectors-300.json (golang.org/x/mod/sumdb/tlog).
 */
import { describe, expect, it } from "vitest";
import { bytesEqual, hexDecode } from "../../src/core/bytes.js";
import { CompactRange } from "../../src/core/compact.js";
import { isVellumError } from "../../src/core/errors.js";
import { rangeNodes } from "../../src/core/merkle.js";
import { buildProof, consistencyProofPlan, inclusionProofPlan } from "../../src/core/proof.js";
import { EMPTY_ROOT, hashLeaf } from "../../src/core/rfc6962.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { b64, b64loose, readVector, readVectorTree, reference300 } from "../vectors.js";

interface InclusionCase {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}
interface ConsistencyCase {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

const inclusionCases = readVectorTree<InclusionCase>("transparency-dev-merkle/inclusion");
const consistencyCases = readVectorTree<ConsistencyCase>("transparency-dev-merkle/consistency");

// The one case where Vellum deliberately differs (see test/known-answers/README.md): it expects
// acceptance of 12-byte placeholder roots, and Vellum refuses any root that is not 32 bytes.
const PLACEHOLDER_ROOTS = "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json";

describe("transparency-dev/merkle inclusion cases", () => {
  it("has the expected number of files", () => {
    expect(inclusionCases.length + consistencyCases.length).toBe(196);
  });
  it.each(inclusionCases)("%s", (_path, c) => {
    const run = () =>
      verifyInclusion(
        c.leafIdx,
        c.treeSize,
        b64loose(c.leafHash),
        (c.proof ?? []).map(b64loose),
        b64loose(c.root),
      );
    if (c.wantErr) expect(run).toThrowError(expect.objectContaining({ name: "VellumError" }));
    else expect(run).not.toThrow();
  });
});

describe("transparency-dev/merkle consistency cases", () => {
  it.each(consistencyCases)("%s", (path, c) => {
    const run = () =>
      verifyConsistency(
        c.size1,
        c.size2,
        (c.proof ?? []).map(b64loose),
        b64loose(c.root1),
        b64loose(c.root2),
      );
    if (path.endsWith(PLACEHOLDER_ROOTS)) {
      expect(c.wantErr).toBe(false);
      expect(run).toThrowError(expect.objectContaining({ code: "MALFORMED" }));
      // The same claim with real 32-byte roots is accepted.
      const root = hashLeaf(new Uint8Array(0));
      expect(() => verifyConsistency(1, 1, [], root, root)).not.toThrow();
      return;
    }
    if (c.wantErr) expect(run).toThrowError(expect.objectContaining({ name: "VellumError" }));
    else expect(run).not.toThrow();
  });

  it("accepts an empty proof from size 0 (C2SP tlog-witness) and refuses any other", () => {
    const root = hashLeaf(new Uint8Array([1]));
    expect(() => verifyConsistency(0, 1, [], EMPTY_ROOT, root)).not.toThrow();
    expect(() => verifyConsistency(0, 1, [root], EMPTY_ROOT, root)).toThrowError(
      expect.objectContaining({ code: "PROOF_LENGTH" }),
    );
  });
});

describe("RFC 6962 reference tree (transparency-dev/merkle testonly)", () => {
  const tree = readVector<{
    leafInputsHex: string[];
    rootHashesHexBySize: string[];
    nodeHashesHexByLevel: string[][];
  }>("transparency-dev-merkle/rfc6962-tree.json");
  const leafHashes = tree.leafInputsHex.map((h) => hashLeaf(hexDecode(h)));

  it("computes the root of every size 0..8", () => {
    expect(tree.rootHashesHexBySize).toHaveLength(9);
    const range = CompactRange.empty();
    tree.rootHashesHexBySize.forEach((rootHex, size) => {
      if (size > 0) range.append(leafHashes[size - 1]!);
      expect(bytesEqual(range.root(), hexDecode(rootHex))).toBe(true);
    });
  });

  it("visits every complete subtree hash exactly once, with the right id", () => {
    const seen = new Map<string, Uint8Array>();
    const range = CompactRange.empty();
    range.appendAll(leafHashes, (level, index, hash) => {
      const key = `${level}/${index}`;
      expect(seen.has(key)).toBe(false);
      seen.set(key, hash);
    });
    let count = 0;
    for (const [l, level] of tree.nodeHashesHexByLevel.entries()) {
      for (const [i, hex] of level.entries()) {
        count++;
        expect(bytesEqual(seen.get(`${l}/${i}`)!, hexDecode(hex))).toBe(true);
      }
    }
    expect(tree.nodeHashesHexByLevel).toHaveLength(4);
    expect(seen.size).toBe(count);
    expect(bytesEqual(seen.get("3/0")!, hexDecode(tree.rootHashesHexBySize[8]!))).toBe(true);
  });
});

describe("reference-vectors-300.json (golang.org/x/mod/sumdb/tlog)", () => {
  const v = reference300();
  const leafHashes = v.leaves.map((l) => hashLeaf(b64(l)));
  const nodes = new Map<string, Uint8Array>();
  const range = CompactRange.empty();
  const roots: Uint8Array[] = [range.root()];
  for (const h of leafHashes) {
    range.append(h, (level, index, hash) => nodes.set(`${level}/${index}`, hash));
    roots.push(range.root());
  }
  const readNode = ({ level, index }: { level: number; index: number }) => {
    const h = nodes.get(`${level}/${index}`);
    if (!h) throw new Error(`node ${level}/${index} not in tree`);
    return h;
  };

  it("leaf hashes", () => {
    expect(leafHashes.map((h) => Buffer.from(h).toString("base64"))).toEqual(v.leafHashes);
  });

  it("roots of every size 0..300", () => {
    expect(v.roots).toHaveLength(301);
    for (const { treeSize, root } of v.roots)
      expect(bytesEqual(roots[treeSize]!, b64(root))).toBe(true);
  });

  it("builds and verifies every inclusion proof", () => {
    expect(v.inclusion.length).toBeGreaterThan(200);
    for (const c of v.inclusion) {
      const proof = buildProof(inclusionProofPlan(c.leafIdx, c.treeSize), readNode);
      expect(proof.map((h) => Buffer.from(h).toString("base64"))).toEqual(c.proof);
      verifyInclusion(c.leafIdx, c.treeSize, b64(c.leafHash), c.proof.map(b64), b64(c.root));
    }
  });

  it("builds and verifies every consistency proof", () => {
    expect(v.consistency.length).toBeGreaterThan(400);
    for (const c of v.consistency) {
      const proof = buildProof(consistencyProofPlan(c.size1, c.size2), readNode);
      expect(proof.map((h) => Buffer.from(h).toString("base64"))).toEqual(c.proof);
      verifyConsistency(c.size1, c.size2, c.proof.map(b64), b64(c.root1), b64(c.root2));
    }
  });

  it("restores a compact range from stored nodes and continues it identically", () => {
    for (const size of [0, 1, 7, 64, 255, 256, 257, 299]) {
      const ids = rangeNodes(0, size);
      const restored = CompactRange.fromHashes(0, size, ids.map(readNode));
      expect(bytesEqual(restored.root(), roots[size]!)).toBe(true);
      restored.appendAll(leafHashes.slice(size));
      expect(bytesEqual(restored.root(), roots[300]!)).toBe(true);
    }
  });

  it("names the mismatch in its errors", () => {
    const c = v.inclusion.find((x) => x.proof.length >= 3)!;
    const proof = c.proof.map(b64);
    try {
      verifyInclusion(c.leafIdx, c.treeSize, b64(c.leafHash), proof, roots[0]!);
      expect.unreachable();
    } catch (e) {
      expect(isVellumError(e, "PROOF_MISMATCH")).toBe(true);
    }
    try {
      verifyInclusion(c.leafIdx, c.treeSize, b64(c.leafHash), proof.slice(1), b64(c.root));
      expect.unreachable();
    } catch (e) {
      expect(isVellumError(e, "PROOF_LENGTH")).toBe(true);
    }
  });
});
