/**
 * @module
 * A sparse Merkle map from 32-byte keys to 32-byte values, with proofs of presence and of
 * absence: the map the verifiable index commits to (spec/audit.md, "The index", to come), from
 * an index key's hash to the hash of its (count, list root).
 *
 * The tree is the binary trie of the keys' bits, most significant first, with two shortcuts that
 * keep it O(n) nodes and proofs O(log n) hashes for random keys (as in Diem's Jellyfish Merkle
 * tree): a subtree with no key is EMPTY (32 zero bytes), and a subtree with exactly one key is
 * that key's leaf, wherever it sits. So the shape depends only on the set of keys, and:
 *
 *   leaf(key, value) = SHA-256(0x00 ‖ key ‖ value)
 *   node(left, right) = SHA-256(0x01 ‖ left ‖ right)      (a subtree with two or more keys)
 *   root of the empty map = EMPTY
 *
 * A proof for a key lists, top-down, the sibling of each node on the key's path down to where
 * the path ends: at the key's own leaf (present), at EMPTY or at another key's leaf (absent —
 * that key shares the path so far). Verifying recomputes the root from the bottom up. The
 * domain bytes keep leaves and nodes apart; the shape being a function of the key set makes
 * each key's proof unique.
 */
import { bytesEqual } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { check, VellumError } from "./errors.js";

export const EMPTY_HASH = new Uint8Array(32);

export function smtLeafHash(key: Uint8Array, value: Uint8Array): Uint8Array {
  const buf = new Uint8Array(65);
  buf[0] = 0x00;
  buf.set(key, 1);
  buf.set(value, 33);
  return sha256(buf);
}

export function smtNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(65);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256(buf);
}

/** Bit `depth` of a 32-byte key, most significant first. */
export function keyBit(key: Uint8Array, depth: number): 0 | 1 {
  return ((key[depth >> 3]! >> (7 - (depth & 7))) & 1) as 0 | 1;
}

export interface SmtEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface SmtProof {
  /** Siblings of the path's nodes, from the root's children down. */
  readonly siblings: readonly Uint8Array[];
  /** Where the path ends: the key's leaf, another key's leaf, or nothing. */
  readonly terminal: { readonly key: Uint8Array; readonly value: Uint8Array } | null;
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function checkEntries(entries: readonly SmtEntry[]): SmtEntry[] {
  for (const e of entries) {
    check(
      e.key.length === 32 && e.value.length === 32,
      "MALFORMED",
      "map keys and values are 32 bytes",
    );
  }
  const sorted = [...entries].sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 1; i < sorted.length; i++) {
    check(
      compareKeys(sorted[i - 1]!.key, sorted[i]!.key) !== 0,
      "MALFORMED",
      "a key appears twice in the map",
    );
  }
  return sorted;
}

/** The first position in sorted[lo, hi) whose key has bit `depth` set. */
function split(sorted: readonly SmtEntry[], lo: number, hi: number, depth: number): number {
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (keyBit(sorted[mid]!.key, depth) === 0) a = mid + 1;
    else b = mid;
  }
  return a;
}

function subtreeHash(
  sorted: readonly SmtEntry[],
  lo: number,
  hi: number,
  depth: number,
): Uint8Array {
  if (hi === lo) return EMPTY_HASH;
  if (hi - lo === 1) return smtLeafHash(sorted[lo]!.key, sorted[lo]!.value);
  check(depth < 256, "INTERNAL", "two equal keys in the map");
  const mid = split(sorted, lo, hi, depth);
  return smtNodeHash(
    subtreeHash(sorted, lo, mid, depth + 1),
    subtreeHash(sorted, mid, hi, depth + 1),
  );
}

/**
 * An immutable map and its root; proofs for any key, present or not. Building is O(n log n)
 * hashes; a proof here rehashes the siblings' subtrees (O(n)) — the index engine that serves
 * many proofs keeps node hashes instead.
 */
export class SparseMerkleMap {
  readonly #sorted: SmtEntry[];
  readonly root: Uint8Array;

  constructor(entries: readonly SmtEntry[]) {
    this.#sorted = checkEntries(entries);
    this.root = subtreeHash(this.#sorted, 0, this.#sorted.length, 0);
  }

  get size(): number {
    return this.#sorted.length;
  }

  prove(key: Uint8Array): SmtProof {
    check(key.length === 32, "MALFORMED", "a map key is 32 bytes");
    const sorted = this.#sorted;
    const siblings: Uint8Array[] = [];
    let lo = 0;
    let hi = sorted.length;
    for (let depth = 0; hi - lo >= 2; depth++) {
      const mid = split(sorted, lo, hi, depth);
      if (keyBit(key, depth) === 0) {
        siblings.push(subtreeHash(sorted, mid, hi, depth + 1));
        hi = mid;
      } else {
        siblings.push(subtreeHash(sorted, lo, mid, depth + 1));
        lo = mid;
      }
    }
    const t = hi - lo === 1 ? sorted[lo]! : undefined;
    return { siblings, terminal: t === undefined ? null : { key: t.key, value: t.value } };
  }
}

/**
 * The value `proof` proves for `key` in the map whose root is `root`, or undefined when it
 * proves the key absent. Throws PROOF_MISMATCH when the proof does not make the root, MALFORMED
 * when it is not shaped right (a terminal leaf off the key's path).
 */
export function verifySmtProof(
  root: Uint8Array,
  key: Uint8Array,
  proof: SmtProof,
): Uint8Array | undefined {
  check(key.length === 32 && root.length === 32, "MALFORMED", "map keys and roots are 32 bytes");
  const depth = proof.siblings.length;
  check(depth <= 256, "MALFORMED", "a map proof has at most 256 siblings");
  for (const s of proof.siblings)
    check(s.length === 32, "MALFORMED", "map proof hashes are 32 bytes");
  const t = proof.terminal;
  if (t !== null) {
    check(
      t.key.length === 32 && t.value.length === 32,
      "MALFORMED",
      "a map leaf's key and value are 32 bytes",
    );
    // Another key's leaf can end this key's path only if both share the path so far.
    for (let d = 0; d < depth; d++) {
      check(
        keyBit(t.key, d) === keyBit(key, d),
        "MALFORMED",
        "the proof's leaf is not on the key's path",
      );
    }
  }
  let hash = t === null ? EMPTY_HASH : smtLeafHash(t.key, t.value);
  for (let d = depth - 1; d >= 0; d--) {
    const sibling = proof.siblings[d]!;
    hash = keyBit(key, d) === 0 ? smtNodeHash(hash, sibling) : smtNodeHash(sibling, hash);
  }
  if (!bytesEqual(hash, root)) {
    throw new VellumError("PROOF_MISMATCH", "the map proof does not make the map's root");
  }
  return t !== null && bytesEqual(t.key, key) ? t.value : undefined;
}
