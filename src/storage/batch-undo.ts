/**
 * @module
 * The undo record of a layout-3 batch (kv-log-store.ts): what it takes to take the batch's own
 * write back out of the log's database when its leaves, written at the same time to the entries
 * store, did not survive.
 *
 * Why it exists: a layout-3 batch has two synced writes, its leaves to the entries store and its
 * own write (lookups, tree strata, tree state, checkpoint) to the log's database. Done one after
 * the other they cost two fsyncs in a row per batch; done at once, a crash can leave the own
 * write without the leaves. The own write therefore also stores this record under "u",
 * overwritten by every batch, and the next write of a batch starts only once this batch's leaves
 * are durable: so at most the last batch can be missing its leaves, and load() puts the log back
 * as it was before it. Nothing of that batch was acknowledged or published (a batch is answered
 * only once both writes are durable).
 *
 * What the own write added is known from the record alone, without the lost leaves:
 *   - the tree state before it (stored back under "s"), and the size after it (whose checkpoint,
 *     "c" size, is deleted; the record must be for the stored tree of that size);
 *   - every lookup key it put: "i" per id, "h" per leaf hash (its era from its index), "p" per
 *     payload hash and "k" per idempotency-key hash, aliases included;
 *   - the strata it wrote follow from the two sizes (rollbackStrata in stratum-bytes.ts).
 *
 * Encoding (all integers big-endian):
 *   u8 version (1) ‖ u64 size after ‖ u32 n ‖ n bytes: the tree state before (tree-state.ts)
 *   ‖ u64 start ‖ u32 count ‖ count × 16: ids ‖ count × 32: leaf hashes
 *   ‖ u32 m ‖ m × 33: tag ("p" or "k") ‖ 32-byte hash.
 */
import { getUint64, putUint64 } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";
import type { EntryBatch } from "./entry-batch.js";

export const UNDO_KEY = Uint8Array.of(0x75); // "u"

const VERSION = 1;
const ID_SIZE = 16;
const HASH_SIZE = 32;
/** The "p" and "k" tags of kv-log-layout.ts: each hashed key recorded is the lookup key itself. */
const PAYLOAD_TAG = 0x70;
const IDEM_TAG = 0x6b;

export interface BatchUndo {
  /** The tree size the batch's own write stored. */
  readonly sizeAfter: number;
  /** The stored tree state ("s" value) before the batch. */
  readonly stateBefore: Uint8Array;
  readonly start: number;
  readonly count: number;
  /** Entry i's id is ids[16i, 16i+16), its leaf hash leafHashes[32i, 32i+32). */
  readonly ids: Uint8Array;
  readonly leafHashes: Uint8Array;
  /** Each "p" or "k" key the batch put: a tag byte and a hash, 33 bytes. */
  readonly hashedKeys: readonly Uint8Array[];
}

/**
 * The record of a batch storing `entries` (and `aliasKeyHashes`, idempotency keys newly pointing
 * at existing entries) over the state `stateBefore`, up to `sizeAfter`. The ids and leaf hashes
 * are the batch's own packed buffers, copied in one piece each.
 */
export function encodeUndo(
  sizeAfter: number,
  stateBefore: Uint8Array,
  entries: EntryBatch,
  aliasKeyHashes: readonly Uint8Array[],
): Uint8Array {
  const n = entries.count;
  const hashed: [number, Uint8Array][] = [];
  for (let i = 0; i < n; i++) {
    const p = entries.payloadHash(i);
    if (p !== undefined) hashed.push([PAYLOAD_TAG, p]);
    const k = entries.keyHash(i);
    if (k !== undefined) hashed.push([IDEM_TAG, k]);
  }
  for (const k of aliasKeyHashes) hashed.push([IDEM_TAG, k]);
  const size =
    1 + 8 + 4 + stateBefore.length + 8 + 4 + n * (ID_SIZE + HASH_SIZE) + 4 + hashed.length * 33;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  out[at++] = VERSION;
  putUint64(out, at, sizeAfter);
  at += 8;
  view.setUint32(at, stateBefore.length);
  at += 4;
  out.set(stateBefore, at);
  at += stateBefore.length;
  putUint64(out, at, entries.start);
  at += 8;
  view.setUint32(at, n);
  at += 4;
  out.set(entries.ids.subarray(0, n * ID_SIZE), at);
  at += n * ID_SIZE;
  out.set(entries.leafHashes.subarray(0, n * HASH_SIZE), at);
  at += n * HASH_SIZE;
  view.setUint32(at, hashed.length);
  at += 4;
  for (const [tag, hash] of hashed) {
    out[at] = tag;
    out.set(hash, at + 1);
    at += 33;
  }
  return out;
}

/** Decodes an undo record; a record that does not parse is damaged storage. */
export function decodeUndo(bytes: Uint8Array): BatchUndo {
  const bad = (why: string) =>
    new VellumError("STATE_MISMATCH", `the stored undo record of the last batch ${why}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, n: number) => {
    if (at + n > bytes.length) throw bad("is truncated");
  };
  need(0, 13);
  if (bytes[0] !== VERSION) throw bad(`has an unknown version ${bytes[0]}`);
  let at = 1;
  const sizeAfter = getUint64(bytes, at, "undo size");
  at += 8;
  const stateLength = view.getUint32(at);
  at += 4;
  need(at, stateLength + 12);
  const stateBefore = bytes.slice(at, at + stateLength);
  at += stateLength;
  const start = getUint64(bytes, at, "undo start");
  at += 8;
  const count = view.getUint32(at);
  at += 4;
  need(at, count * (ID_SIZE + HASH_SIZE) + 4);
  const ids = bytes.slice(at, at + count * ID_SIZE);
  at += count * ID_SIZE;
  const leafHashes = bytes.slice(at, at + count * HASH_SIZE);
  at += count * HASH_SIZE;
  const m = view.getUint32(at);
  at += 4;
  if (at + m * 33 !== bytes.length) throw bad("has a bad length");
  const hashedKeys: Uint8Array[] = [];
  for (let j = 0; j < m; j++, at += 33) {
    const tag = bytes[at]!;
    if (tag !== PAYLOAD_TAG && tag !== IDEM_TAG) throw bad(`holds a key of unknown tag ${tag}`);
    hashedKeys.push(bytes.slice(at, at + 33));
  }
  if (start + count !== sizeAfter) throw bad("does not end at the size it names");
  return { sizeAfter, stateBefore, start, count, ids, leafHashes, hashedKeys };
}
