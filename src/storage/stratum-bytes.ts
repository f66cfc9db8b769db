/**
 * @module
 * The two things storage itself must know of a stored stratum's bytes (otherwise opaque to it),
 * to take a batch back out of the tree (batch-undo.ts): which strata a batch from one size to
 * another wrote, and a stratum cut back to a smaller width.
 *
 * The encoding is the tree's (src/log/strata.ts): u16 big-endian width W, then rows 0..7, row r
 * holding floor(W / 2^r) hashes of 32 bytes. Every complete node under a smaller width is the
 * same node (the tree only appends), so cutting each row to floor(w / 2^r) hashes gives exactly
 * the stratum the tree held at width w.
 */
import { VellumError } from "../core/errors.js";

const TILE_WIDTH = 256;
const TILE_HEIGHT = 8;
const HASH_SIZE = 32;

const rowHashes = (width: number, row: number) => Math.floor(width / 2 ** row);

/** The stratum `bytes` (of width ≥ `width`) as it was at `width` (1 to 255). */
export function truncateStratum(bytes: Uint8Array, width: number): Uint8Array {
  const stored = bytes.length >= 2 ? bytes[0]! * 256 + bytes[1]! : 0;
  let total = 0;
  for (let r = 0; r < TILE_HEIGHT; r++) total += rowHashes(stored, r);
  if (stored < 1 || stored > TILE_WIDTH || bytes.length !== 2 + total * HASH_SIZE) {
    throw new VellumError("STATE_MISMATCH", "a stored tile to roll back has a bad length");
  }
  if (width < 1 || width > stored) {
    throw new VellumError(
      "STATE_MISMATCH",
      `a stored tile of width ${stored} cannot be rolled back to width ${width}`,
    );
  }
  let kept = 0;
  for (let r = 0; r < TILE_HEIGHT; r++) kept += rowHashes(width, r);
  const out = new Uint8Array(2 + kept * HASH_SIZE);
  out[0] = width >>> 8;
  out[1] = width & 0xff;
  let from = 2;
  let to = 2;
  for (let r = 0; r < TILE_HEIGHT; r++) {
    const n = rowHashes(width, r) * HASH_SIZE;
    out.set(bytes.subarray(from, from + n), to);
    from += rowHashes(stored, r) * HASH_SIZE;
    to += n;
  }
  return out;
}

/** A stratum a batch wrote: back to `width` (1 to 255), or deleted (0: it did not exist). */
export interface StratumRollback {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/**
 * The strata a batch growing the tree from `before` to `after` entries wrote, and what each was
 * before it. At tile level L the tree has floor(size / 256^L) nodes of tree level 8L; the batch
 * wrote every tile from the one holding node number floor(before / 256^L) to the one holding its
 * last new node. The first was at the old count mod 256 (a full tile is never rewritten: a count
 * that is a multiple of 256 starts a tile the batch created); the rest are new.
 */
export function rollbackStrata(before: number, after: number): StratumRollback[] {
  const out: StratumRollback[] = [];
  for (let level = 0, span = 1; span <= after; level++, span *= TILE_WIDTH) {
    const from = Math.floor(before / span);
    const to = Math.floor(after / span);
    if (to === from) continue;
    const first = Math.floor(from / TILE_WIDTH);
    const last = Math.floor((to - 1) / TILE_WIDTH);
    for (let index = first; index <= last; index++) {
      const width = index === first ? from % TILE_WIDTH : 0;
      out.push({ level, index, width });
    }
  }
  return out;
}
