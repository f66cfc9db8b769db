/**
 * @module
 * A batch's new entries, packed: all their leaves in one buffer, their ids and leaf hashes in one
 * buffer each, rather than several objects and buffers per entry.
 *
 * Why: a batch lives from the moment it is prepared until its submitters are answered, through
 * an fsync, while thousands of others queue behind it. Everything it holds then survives V8's
 * young-generation collections, which copy (and then promote) each surviving object: with an
 * object, a leaf buffer, an id and a hash per entry, those copies were about a third of the
 * sequencer's time. Packed, a batch is a handful of objects whatever its size, and the views a
 * reader asks for (`leaf(i)`, `id(i)`, `leafHash(i)`) are made when asked and die young.
 */
import { VellumError } from "../core/errors.js";

const ID_SIZE = 16;
const HASH_SIZE = 32;

/** One entry, unpacked: what `EntryBatch.of` takes (tests, tools, other writers). */
export interface EntryWrite {
  readonly index: number;
  /** The leaf bytes (src/core/entry.ts). */
  readonly leaf: Uint8Array;
  /** The entry's 16-byte id. */
  readonly id: Uint8Array;
  readonly leafHash: Uint8Array;
  /** SHA-256 of the payload: only under payload dedup. */
  readonly payloadHash?: Uint8Array | undefined;
  /** SHA-256 of the idempotency key, if the submission had one. */
  readonly keyHash?: Uint8Array | undefined;
}

export class EntryBatch {
  /** Index of the first entry; entry i of the batch is at index `start + i`. */
  readonly start: number;
  readonly count: number;
  /**
   * The leaves, each after one spare byte: leaf i is `bytes[ends[i-1] + 1, ends[i])` (with
   * `ends[-1]` taken as 0). The sequencer puts the RFC 6962 leaf prefix (0x00) in that byte and
   * hashes the leaf where it lies; storage never reads it.
   */
  readonly bytes: Uint8Array;
  readonly ends: Uint32Array;
  /** Entry i's id is `ids[16i, 16i+16)`, its leaf hash `leafHashes[32i, 32i+32)`. */
  readonly ids: Uint8Array;
  readonly leafHashes: Uint8Array;
  /** Per entry, when any entry has one (undefined: none has). */
  readonly payloadHashes: readonly (Uint8Array | undefined)[] | undefined;
  readonly keyHashes: readonly (Uint8Array | undefined)[] | undefined;

  constructor(fields: {
    start: number;
    count: number;
    bytes: Uint8Array;
    ends: Uint32Array;
    ids: Uint8Array;
    leafHashes: Uint8Array;
    payloadHashes?: readonly (Uint8Array | undefined)[] | undefined;
    keyHashes?: readonly (Uint8Array | undefined)[] | undefined;
  }) {
    const { start, count, bytes, ends, ids, leafHashes, payloadHashes, keyHashes } = fields;
    if (
      !Number.isSafeInteger(start) ||
      start < 0 ||
      !Number.isSafeInteger(count) ||
      count < 0 ||
      ends.length < count ||
      ids.length < count * ID_SIZE ||
      leafHashes.length < count * HASH_SIZE ||
      (count > 0 && ends[count - 1]! > bytes.length) ||
      (payloadHashes !== undefined && payloadHashes.length < count) ||
      (keyHashes !== undefined && keyHashes.length < count)
    ) {
      throw new VellumError("INTERNAL", "an entry batch's parts do not fit its count");
    }
    this.start = start;
    this.count = count;
    this.bytes = bytes;
    this.ends = ends;
    this.ids = ids;
    this.leafHashes = leafHashes;
    this.payloadHashes = payloadHashes;
    this.keyHashes = keyHashes;
  }

  /** Packs entries given one by one (their indices must run on from the first's). */
  static of(entries: readonly EntryWrite[], start = entries[0]?.index ?? 0): EntryBatch {
    const count = entries.length;
    let size = 0;
    for (const e of entries) size += 1 + e.leaf.length;
    const bytes = new Uint8Array(size);
    const ends = new Uint32Array(count);
    const ids = new Uint8Array(count * ID_SIZE);
    const leafHashes = new Uint8Array(count * HASH_SIZE);
    const payloadHashes: (Uint8Array | undefined)[] = new Array(count);
    const keyHashes: (Uint8Array | undefined)[] = new Array(count);
    let anyPayload = false;
    let anyKey = false;
    let at = 0;
    for (let i = 0; i < count; i++) {
      const e = entries[i]!;
      if (e.index !== start + i) {
        throw new VellumError("INTERNAL", "a batch's entry indices must run on");
      }
      if (e.id.length !== ID_SIZE || e.leafHash.length !== HASH_SIZE) {
        throw new VellumError("INTERNAL", "an entry id is 16 bytes and a leaf hash 32");
      }
      bytes.set(e.leaf, at + 1);
      at += 1 + e.leaf.length;
      ends[i] = at;
      ids.set(e.id, i * ID_SIZE);
      leafHashes.set(e.leafHash, i * HASH_SIZE);
      payloadHashes[i] = e.payloadHash;
      keyHashes[i] = e.keyHash;
      anyPayload ||= e.payloadHash !== undefined;
      anyKey ||= e.keyHash !== undefined;
    }
    return new EntryBatch({
      start,
      count,
      bytes,
      ends,
      ids,
      leafHashes,
      payloadHashes: anyPayload ? payloadHashes : undefined,
      keyHashes: anyKey ? keyHashes : undefined,
    });
  }

  /** Where leaf i starts in `bytes` (after its spare byte). */
  leafStart(i: number): number {
    return (i === 0 ? 0 : this.ends[i - 1]!) + 1;
  }

  /** Leaf i, as a view of `bytes`. */
  leaf(i: number): Uint8Array {
    return this.bytes.subarray(this.leafStart(i), this.ends[i]!);
  }

  /** Entry i's id, as a view of `ids`. */
  id(i: number): Uint8Array {
    return this.ids.subarray(i * ID_SIZE, (i + 1) * ID_SIZE);
  }

  /** Entry i's leaf hash, as a view of `leafHashes`. */
  leafHash(i: number): Uint8Array {
    return this.leafHashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }

  payloadHash(i: number): Uint8Array | undefined {
    return this.payloadHashes?.[i];
  }

  keyHash(i: number): Uint8Array | undefined {
    return this.keyHashes?.[i];
  }

  /** Every leaf, as views (for callers that want a list). */
  leaves(): Uint8Array[] {
    const out: Uint8Array[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.leaf(i);
    return out;
  }
}
