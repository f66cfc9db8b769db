/**
 * RFC 6962 §2.1 written out literally — MTH, PATH and SUBPROOF as recursions over arrays of
 * leaves — as the independent reference the Merkle code is tested against. Deliberately slow
 * and obvious: no node ids, no tiles, no caching.
 */
import { concatBytes } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";

const H = (...parts: Uint8Array[]) => sha256(concatBytes(...parts));

/** The largest power of two smaller than n (n ≥ 2). */
const k = (n: number) => {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
};

/** MTH(D): the Merkle tree hash of the leaves D. */
export function mth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return H();
  if (d.length === 1) return H(Uint8Array.of(0), d[0]!);
  const s = k(d.length);
  return H(Uint8Array.of(1), mth(d.slice(0, s)), mth(d.slice(s)));
}

/** PATH(m, D): the inclusion proof of leaf m, from the leaf upwards. */
export function path(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s
    ? [...path(m, d.slice(0, s)), mth(d.slice(s))]
    : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}

/** SUBPROOF(m, D, b): the consistency proof from the first m leaves (PROOF(m, D) = b true). */
export function subproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}
