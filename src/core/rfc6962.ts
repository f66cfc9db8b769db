/**
 * @module
 * RFC 6962 §2.1 / RFC 9162 §2.1.1 Merkle tree hashing with SHA-256:
 *   leaf hash = SHA-256(0x00 || entry), interior node = SHA-256(0x01 || left || right),
 *   root of the empty tree = SHA-256("").
 * The one-byte prefixes keep a leaf from ever being confused with an interior node.
 */

import { sha256 } from "./crypto.js";
import { VellumError } from "./errors.js";

export const HASH_SIZE = 32;

/** Root hash of the empty tree, SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = Uint8Array.from([
  0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
  0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/** Entries up to this size are hashed through one reused input buffer (see hashChildren). */
const LEAF_SCRATCH_LIMIT = 64 * 1024;
let leafInput = new Uint8Array(1024);
/**
 * Inputs of small leaves, one of exactly each size up to 128 bytes: hashed whole, with no view
 * made per hash (an index hashes a 9-byte leaf for every entry of every list it joins).
 */
const smallLeafInputs: (Uint8Array | undefined)[] = [];

export function hashLeaf(entry: Uint8Array): Uint8Array {
  const size = 1 + entry.length;
  if (size <= 128) {
    let input = smallLeafInputs[size];
    if (input === undefined) {
      input = new Uint8Array(size);
      smallLeafInputs[size] = input;
    }
    input.set(entry, 1);
    return sha256(input);
  }
  if (size > LEAF_SCRATCH_LIMIT) {
    const buf = new Uint8Array(size);
    buf.set(entry, 1);
    return sha256(buf);
  }
  if (size > leafInput.length) {
    leafInput = new Uint8Array(Math.min(LEAF_SCRATCH_LIMIT, Math.max(size, 2 * leafInput.length)));
  }
  leafInput[0] = 0x00;
  leafInput.set(entry, 1);
  return sha256(leafInput.subarray(0, size));
}

/**
 * The input of every interior-node hash (and of leaf hashes up to 64 KiB) goes through a
 * module-level scratch buffer: a fresh
 * 65-byte buffer per call (1 byte over V8's on-heap typed-array limit, so an ArrayBuffer plus
 * off-heap backing store each time) was a measurable share of the sequencer's GC. Safe because
 * `sha256` reads its input synchronously and returns a new buffer: nothing retains the scratch,
 * and JavaScript cannot re-enter this function between the writes and the hash.
 */
const CHILDREN_INPUT = new Uint8Array(1 + 2 * HASH_SIZE);
CHILDREN_INPUT[0] = 0x01;

// One 65-byte input and one hash call: measured ~2x faster than incremental updates.
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  // Plain ifs, not check(): this runs ~twice per appended leaf, and check()'s message argument
  // would be built on every call.
  if (left.length !== HASH_SIZE) {
    throw new VellumError("MALFORMED", `left child must be ${HASH_SIZE} bytes`);
  }
  if (right.length !== HASH_SIZE) {
    throw new VellumError("MALFORMED", `right child must be ${HASH_SIZE} bytes`);
  }
  CHILDREN_INPUT.set(left, 1);
  CHILDREN_INPUT.set(right, 1 + HASH_SIZE);
  return sha256(CHILDREN_INPUT);
}
