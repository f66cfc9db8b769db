/**
 * The sparse Merkle map (src/core/smt.ts): roots equal a naive reference built from the
 * definition (a trie of bit strings, shortcut at one key); every key proves its value, absent
 * keys prove absent, and every single-bit change of a proof is refused.
 */
import { describe, expect, it } from "vitest";
import { sha256 } from "../../src/core/crypto.js";
import {
  EMPTY_HASH,
  type SmtEntry,
  type SmtProof,
  SparseMerkleMap,
  smtLeafHash,
  smtNodeHash,
  verifySmtProof,
} from "../../src/core/smt.js";
import { codeOf } from "../helpers/errors.js";

const enc = new TextEncoder();
const key = (s: string) => sha256(enc.encode(`key ${s}`));
const value = (s: string) => sha256(enc.encode(`value ${s}`));
const entries = (n: number, tag = "") =>
  Array.from({ length: n }, (_, i) => ({ key: key(`${tag}${i}`), value: value(`${tag}${i}`) }));

/** The map's root from the definition: group keys by their bit string prefix. */
function naiveRoot(es: readonly SmtEntry[]): Uint8Array {
  const bits = (k: Uint8Array) => [...k].map((b) => b.toString(2).padStart(8, "0")).join("");
  const walk = (group: { bits: string; e: SmtEntry }[], depth: number): Uint8Array => {
    if (group.length === 0) return EMPTY_HASH;
    if (group.length === 1) return smtLeafHash(group[0]!.e.key, group[0]!.e.value);
    const left = group.filter((g) => g.bits[depth] === "0");
    const right = group.filter((g) => g.bits[depth] === "1");
    return smtNodeHash(walk(left, depth + 1), walk(right, depth + 1));
  };
  return walk(
    es.map((e) => ({ bits: bits(e.key), e })),
    0,
  );
}

describe("sparse Merkle map", () => {
  it("the empty map's root is EMPTY and proves every key absent", () => {
    const m = new SparseMerkleMap([]);
    expect(m.root).toEqual(EMPTY_HASH);
    expect(verifySmtProof(m.root, key("x"), m.prove(key("x")))).toBeUndefined();
  });

  it.each([1, 2, 3, 7, 33, 100])(
    "%i keys: the root is the definition's; present and absent keys prove",
    (n) => {
      const es = entries(n);
      const m = new SparseMerkleMap([...es].reverse());
      expect(m.root).toEqual(naiveRoot(es));
      for (const e of es) expect(verifySmtProof(m.root, e.key, m.prove(e.key))).toEqual(e.value);
      for (let i = 0; i < 20; i++) {
        const k = key(`absent ${i}`);
        expect(verifySmtProof(m.root, k, m.prove(k))).toBeUndefined();
      }
    },
  );

  it("refuses every single-bit change of a presence and an absence proof", () => {
    const es = entries(40);
    const m = new SparseMerkleMap(es);
    const check = (k: Uint8Array, proof: SmtProof, want: Uint8Array | undefined) => {
      expect(verifySmtProof(m.root, k, proof)).toEqual(want);
      const flips: SmtProof[] = [];
      proof.siblings.forEach((s, i) => {
        for (let bit = 0; bit < 256; bit++) {
          const t = s.slice();
          t[bit >> 3]! ^= 1 << (bit & 7);
          flips.push({ ...proof, siblings: proof.siblings.map((x, j) => (j === i ? t : x)) });
        }
      });
      if (proof.terminal !== null) {
        for (const field of ["key", "value"] as const) {
          for (let bit = 0; bit < 256; bit++) {
            const t = proof.terminal[field].slice();
            t[bit >> 3]! ^= 1 << (bit & 7);
            flips.push({ ...proof, terminal: { ...proof.terminal, [field]: t } });
          }
        }
      }
      for (const f of flips)
        expect(["PROOF_MISMATCH", "MALFORMED"]).toContain(
          codeOf(() => verifySmtProof(m.root, k, f)),
        );
      // Dropped or added siblings, and a terminal removed or invented.
      expect(
        codeOf(() => verifySmtProof(m.root, k, { ...proof, siblings: proof.siblings.slice(1) })),
      ).not.toBe("no error");
      expect(
        codeOf(() =>
          verifySmtProof(m.root, k, { ...proof, siblings: [...proof.siblings, EMPTY_HASH] }),
        ),
      ).not.toBe("no error");
      if (proof.terminal !== null) {
        expect(codeOf(() => verifySmtProof(m.root, k, { ...proof, terminal: null }))).toBe(
          "PROOF_MISMATCH",
        );
      }
    };
    check(es[7]!.key, m.prove(es[7]!.key), es[7]!.value);
    const absent = key("nobody");
    check(absent, m.prove(absent), undefined);
  });

  it("a key's proof proves nothing about another key, and another map's root refuses it", () => {
    const es = entries(30);
    const m = new SparseMerkleMap(es);
    const proof = m.prove(es[3]!.key);
    // Used for another present key: either refused or (sharing the path) proves it absent — never its value.
    expect(() => verifySmtProof(m.root, es[4]!.key, proof)).toThrow();
    const other = new SparseMerkleMap(entries(30, "other"));
    expect(codeOf(() => verifySmtProof(other.root, es[3]!.key, proof))).toBe("PROOF_MISMATCH");
    expect(() => new SparseMerkleMap([es[0]!, es[0]!])).toThrowError(/twice/);
  });
});
