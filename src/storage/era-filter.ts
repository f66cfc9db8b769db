/**
 * @module
 * The filter of one era's leaf hashes (kv-log-layout.ts, layout 2): a blocked Bloom filter that
 * says which eras may hold a leaf hash, so a lookup asks those and not all of them.
 *
 * Blocked: a leaf hash sets all its bits inside one 64-byte block, and the block it falls in is
 * the same in every era. Stored as one key per block and era ("f" ‖ block ‖ era), the blocks of
 * every era for one leaf hash then lie side by side, and a lookup reads them in one short range
 * (382 × 73 bytes at 100 million entries) instead of probing every era's keys.
 *
 * 16 bits per entry and 8 probes: about 1 false era in 1,000 (test/storage/era-filter.test.ts
 * measures it), 2 bytes of disk per entry. The bits come from the leaf hash itself: it is
 * SHA-256 output over a leaf that holds the server's id and timestamp, so no submitter can steer
 * many leaves into one block; a lookup of a chosen hash costs its asker at worst a few more gets.
 */
import { ERA_SIZE } from "./kv-log-layout.js";

/** Bytes in one block (512 bits). */
export const FILTER_BLOCK_BYTES = 64;
/** Blocks per era: 16 bits for each of the era's 2^18 entries. */
export const FILTER_BLOCKS = (ERA_SIZE * 16) / (FILTER_BLOCK_BYTES * 8);
const PROBES = 8;

/** The block a leaf hash falls in: bytes 2–3 of the hash (FILTER_BLOCKS is 2^13). */
export const filterBlockOf = (leafHash: Uint8Array): number =>
  ((leafHash[2]! << 8) | leafHash[3]!) & (FILTER_BLOCKS - 1);

/** Whether a stored block may hold `leafHash`: false is certain, true may be a false positive. */
export function blockMayHold(block: Uint8Array, leafHash: Uint8Array): boolean {
  for (let j = 0; j < PROBES; j++) {
    const bit = ((leafHash[4 + 2 * j]! << 8) | leafHash[5 + 2 * j]!) & 511;
    if ((block[bit >> 3]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}

/** One era's filter being built: every block, in one buffer. */
export class EraFilter {
  readonly bits = new Uint8Array(FILTER_BLOCKS * FILTER_BLOCK_BYTES);

  /** Adds the leaf hash at `at` in `hashes` (32 bytes). */
  add(hashes: Uint8Array, at = 0): void {
    const base = (((hashes[at + 2]! << 8) | hashes[at + 3]!) & (FILTER_BLOCKS - 1)) * 64;
    for (let j = 0; j < PROBES; j++) {
      const bit = ((hashes[at + 4 + 2 * j]! << 8) | hashes[at + 5 + 2 * j]!) & 511;
      this.bits[base + (bit >> 3)]! |= 1 << (bit & 7);
    }
  }

  /** Block `b`, as a view. */
  block(b: number): Uint8Array {
    return this.bits.subarray(b * FILTER_BLOCK_BYTES, (b + 1) * FILTER_BLOCK_BYTES);
  }
}
