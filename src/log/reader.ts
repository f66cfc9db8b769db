/**
 * @module
 * Reads: entries (by index, id or leaf hash, and in ranges), proofs, receipts, hash tiles and
 * entry bundles — only of what a published checkpoint covers. Every stored leaf a read returns is
 * verified against the tree first (integrity.ts): damaged storage fails the read
 * (INTEGRITY_FAILURE), it is never served.
 */
import { bytesEqual } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { decodeLeaf, formatUuid } from "../core/entry.js";
import { check, VellumError } from "../core/errors.js";
import { LruCache } from "../core/lru.js";
import { checkSize } from "../core/merkle.js";
import { encodeEntryBundle, entryBundleViews, TILE_WIDTH } from "../core/tiles.js";
import type { EntryBatch } from "../storage/log-store.js";
import type { LogEntry } from "./config.js";
import type { LogContext } from "./context.js";
import type { Publisher } from "./publisher.js";
import { Receipt } from "./receipt.js";

export class Reader {
  readonly #ctx: LogContext;
  readonly #publisher: Publisher;
  /** Full bundles, encoded (C2SP tlog-tiles entry bundles). */
  readonly #bundles: LruCache<number, Uint8Array>;
  /** Leaves of the bundle being filled, from its first (see `committed`). */
  #filling: Uint8Array[] = [];
  /** Index of #filling[0]: a multiple of 256, or -1 until the next bundle starts. */
  #fillingStart = -1;

  constructor(ctx: LogContext, publisher: Publisher) {
    this.#ctx = ctx;
    this.#publisher = publisher;
    this.#bundles = new LruCache(ctx.config.bundleCacheBytes ?? 64 * 1024 * 1024, (b) => b.length);
  }

  /**
   * A batch's leaves, as committed: every bundle they complete goes into the bundle cache from
   * memory, encoded, so the archive and tile readers, who want each new bundle about once, do
   * not read it back from storage and hash it again. These are the bytes the sequencer hashed
   * into the tree and the store acknowledged, not bytes read from storage, so the read path's
   * check against the tree has nothing to add. Leaves that do not follow on (a reload, a batch
   * lost) restart the collection at the next bundle.
   *
   * A bundle is encoded when it fills: one buffer for its 256 leaves, where holding the leaves
   * (views of the batch) would keep 256 objects alive per bundle, which V8 then copies and
   * promotes; the copy is about 10 µs per bundle.
   */
  committed(batch: EntryBatch): void {
    const { start, count } = batch;
    let i = 0;
    if (this.#fillingStart < 0 || start !== this.#fillingStart + this.#filling.length) {
      this.#filling = [];
      i = (TILE_WIDTH - (start % TILE_WIDTH)) % TILE_WIDTH; // to the next bundle's first leaf
      this.#fillingStart = start + i;
    }
    for (; i < count; i++) {
      this.#filling.push(batch.leaf(i));
      if (this.#filling.length === TILE_WIDTH) {
        this.#bundles.set(this.#fillingStart / TILE_WIDTH, encodeEntryBundle(this.#filling));
        this.#fillingStart += TILE_WIDTH;
        this.#filling = [];
      }
    }
  }

  /** Inclusion proofs from the current tree, for receipts. */
  readonly proofs = (index: number, size: number) => this.#ctx.tree.inclusionProof(index, size);

  /** The published size: the latest signed checkpoint's. */
  get #size(): number {
    return this.#ctx.latest.checkpoint.size;
  }

  #checkPublished(size: number, what = "tree size"): void {
    checkSize(size, what);
    check(
      size <= this.#size,
      "OUT_OF_RANGE",
      `${what} ${size} is beyond the latest checkpoint's size ${this.#size}`,
    );
  }

  #checkIndex(index: number): void {
    checkSize(index, "index");
    check(index < this.#size, "NOT_FOUND", `no entry at index ${index} (log size ${this.#size})`);
  }

  /**
   * Up to `limit` checkpoints the log keeps, largest size first, each with its latest
   * signatures, none beyond the published size (for charts of growth; each verifies alone).
   */
  async recentCheckpoints(limit: number): Promise<string[]> {
    const published = this.#size;
    const notes = await this.#ctx.store.recentCheckpoints(limit + 1);
    return notes.filter((note) => Number(note.split("\n", 2)[1]) <= published).slice(0, limit);
  }

  /** The signed checkpoint published for `size` (its latest signature). */
  async checkpointAt(size: number): Promise<string> {
    this.#checkPublished(size);
    const note = await this.#ctx.store.checkpoint(size);
    if (note === undefined) {
      throw new VellumError("NOT_FOUND", `no checkpoint was published at size ${size}`);
    }
    return note;
  }

  async entry(index: number): Promise<LogEntry> {
    const { leaf, leafHash } = await this.#leaf(index);
    return toEntry(index, leaf, leafHash);
  }

  /** The stored leaf bytes of a published entry and their leaf hash, verified against the tree. */
  async #leaf(index: number): Promise<{ leaf: Uint8Array; leafHash: Uint8Array }> {
    this.#checkIndex(index);
    // The tree of the moment of the read: a reload may replace it, never shrink what it publishes.
    const tree = this.#ctx.tree;
    const [leaf] = await this.#ctx.store.leaves([index]);
    const leafHash = await this.#ctx.verify.leaf(tree, index, leaf);
    return { leaf: leaf!, leafHash };
  }

  #found(index: number | undefined, what: string): number {
    if (index === undefined || index >= this.#size) {
      throw new VellumError("NOT_FOUND", `no entry with this ${what}`);
    }
    return index;
  }

  // A lookup index that points at another entry than the one it names is damaged storage too:
  // serving that entry would answer the question with other bytes.

  async entryById(id: Uint8Array): Promise<LogEntry> {
    const entry = await this.entry(this.#found(await this.#ctx.store.findById(id), "id"));
    const asked = formatUuid(id);
    if (entry.id !== asked) {
      throw this.#ctx.verify.fail(
        "lookup",
        entry.index,
        `the id index maps ${asked} to entry ${entry.index}, whose id is ${entry.id}`,
      );
    }
    return entry;
  }

  async entryByLeafHash(leafHash: Uint8Array): Promise<LogEntry> {
    const index = this.#found(await this.#ctx.store.findByLeafHash(leafHash), "leaf hash");
    const entry = await this.entry(index);
    if (!bytesEqual(entry.leafHash, leafHash)) throw this.#wrongLeafHash(entry.index);
    return entry;
  }

  async indexOfLeafHash(leafHash: Uint8Array): Promise<number> {
    const tree = this.#ctx.tree;
    const index = this.#found(await this.#ctx.store.findByLeafHash(leafHash), "leaf hash");
    const [stored] = await tree.leafHashes(index, index + 1);
    if (stored === undefined || !bytesEqual(stored, leafHash)) throw this.#wrongLeafHash(index);
    return index;
  }

  #wrongLeafHash(index: number): VellumError {
    return this.#ctx.verify.fail(
      "lookup",
      index,
      `the leaf-hash index points at entry ${index}, whose leaf hash in the tree is another`,
    );
  }

  /**
   * The leaves of the published entries [start, start+limit), in order, for a reader that
   * wants their bytes only (the index): what the bundle cache holds (bundles this process
   * committed, or verified when it read them) and the bundle being filled come from memory, the
   * rest from storage, verified against the tree. No ids formatted, no payloads decoded.
   */
  async leaves(start: number, limit: number): Promise<Uint8Array[]> {
    checkSize(start, "start");
    const end = Math.min(this.#size, start + Math.max(0, limit));
    const out: Uint8Array[] = [];
    for (let at = start; at < end; ) {
      const bundle = Math.floor(at / TILE_WIDTH);
      const first = bundle * TILE_WIDTH;
      const stop = Math.min(end, first + TILE_WIDTH);
      const held = this.#heldLeaves(bundle);
      if (held !== undefined && first + held.length >= stop) {
        for (let i = at; i < stop; i++) out.push(held[i - first]!);
      } else {
        const tree = this.#ctx.tree;
        const rows = await this.#ctx.store.leafRange(at, stop);
        for (const l of await this.#ctx.verify.rows(tree, at, stop, rows)) out.push(l.leaf);
      }
      at = stop;
    }
    return out;
  }

  /** The leaves of bundle `index` this process holds in memory (all of it, or its first ones). */
  #heldLeaves(index: number): readonly Uint8Array[] | undefined {
    const cached = this.#bundles.get(index);
    // Views of the cached bundle: its bytes are never changed, and the index only reads them.
    if (cached !== undefined) return entryBundleViews(cached);
    if (this.#fillingStart === index * TILE_WIDTH) return this.#filling;
    return undefined;
  }

  /** Entries [start, start+limit) that are published, in order. */
  async entries(start: number, limit: number): Promise<LogEntry[]> {
    checkSize(start, "start");
    const end = Math.min(this.#size, start + Math.max(0, limit));
    if (start >= end) return [];
    const tree = this.#ctx.tree;
    const rows = await this.#ctx.store.leafRange(start, end);
    const leaves = await this.#ctx.verify.rows(tree, start, end, rows);
    return leaves.map((l) => toEntry(l.index, l.leaf, l.leafHash));
  }

  /**
   * The payloads of the entries at `indices` (undefined ones skipped), verified against the tree
   * — for the sequencer's key dedup, which must tell a retry (same payload) from a CONFLICT.
   * These may be beyond the published size (the batch before was just written), so no range
   * check; the current tree covers them.
   */
  async storedPayloads(
    indices: readonly (number | undefined)[],
  ): Promise<Map<number, Uint8Array | undefined>> {
    const wanted = [...new Set(indices.filter((i) => i !== undefined))];
    const out = new Map<number, Uint8Array | undefined>();
    if (wanted.length === 0) return out;
    const leaves = await this.#ctx.store.leaves(wanted);
    const tree = this.#ctx.tree;
    for (let k = 0; k < wanted.length; k++) {
      const leaf = leaves[k];
      await this.#ctx.verify.leaf(tree, wanted[k]!, leaf);
      out.set(wanted[k]!, decodeLeaf(leaf!).payload);
    }
    return out;
  }

  /**
   * The multiproof (src/core/multiproof.ts) of leaves `indices` (strictly increasing) in the
   * tree of `size`.
   */
  async multiproof(indices: readonly number[], size: number): Promise<Uint8Array[]> {
    this.#checkPublished(size);
    return this.#ctx.tree.multiproof(indices, size);
  }

  /** The root of the tree of `size` (any size up to the latest checkpoint's). */
  async rootAt(size: number): Promise<Uint8Array> {
    this.#checkPublished(size);
    return this.#ctx.tree.rootAt(size);
  }

  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    this.#checkPublished(size);
    check(index < size, "OUT_OF_RANGE", `index ${index} is not below tree size ${size}`);
    return this.#ctx.tree.inclusionProof(index, size);
  }

  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    this.#checkPublished(size2, "second tree size");
    check(size1 <= size2, "OUT_OF_RANGE", `first size ${size1} exceeds second size ${size2}`);
    return this.#ctx.tree.consistencyProof(size1, size2);
  }

  /**
   * The receipt of entry `index` against the latest checkpoint. `payloadHash`: the payload a
   * duplicate submission was matched to this entry by (the dedup index), checked against it.
   */
  async receiptFor(index: number, payloadHash?: Uint8Array): Promise<Receipt> {
    const published = this.#publisher.published;
    const covered = published !== undefined && published.checkpoint.size > index;
    const { checkpoint, note } = covered ? published : this.#ctx.latest;
    // Witnessed only when a witness policy was met, never merely because a checkpoint is public.
    const witnessed = covered && this.#ctx.witnessed;
    // Decoded once: the receipt needs the raw id, not entry()'s text form.
    const { leaf, leafHash } = await this.#leaf(index);
    const { id, timestamp, submitter, payload } = decodeLeaf(leaf);
    if (payloadHash !== undefined && !bytesEqual(sha256(payload), payloadHash)) {
      throw this.#ctx.verify.fail(
        "lookup",
        index,
        `the payload index matched a submission to entry ${index}, which holds another payload`,
      );
    }
    return new Receipt(
      index,
      id,
      timestamp,
      leafHash,
      note,
      checkpoint.size,
      false,
      this.proofs,
      witnessed,
      submitter,
    );
  }

  async receipt(index: number): Promise<Receipt> {
    this.#checkIndex(index);
    return this.receiptFor(index);
  }

  /** A C2SP hash tile, if the latest checkpoint's tree serves it. */
  async hashTile(level: number, index: number, width: number): Promise<Uint8Array> {
    const nodes = Math.floor(this.#size / TILE_WIDTH ** level);
    if (index * TILE_WIDTH + width > nodes) {
      throw new VellumError(
        "NOT_FOUND",
        `tile ${level}/${index} of width ${width} is not published`,
      );
    }
    const tile = await this.#ctx.tree.hashTile(level, index, width);
    if (tile === undefined) throw new VellumError("INTERNAL", `tile ${level}/${index} missing`);
    return tile;
  }

  /** A C2SP entry bundle (leaves index·256 … index·256+width−1), if published. */
  async entryBundle(index: number, width: number): Promise<Uint8Array> {
    const first = index * TILE_WIDTH;
    if (first + width > this.#size) {
      throw new VellumError(
        "NOT_FOUND",
        `entry bundle ${index} of width ${width} is not published`,
      );
    }
    if (width === TILE_WIDTH) {
      const cached = this.#bundles.get(index);
      if (cached !== undefined) return cached;
    }
    const tree = this.#ctx.tree;
    const rows = await this.#ctx.store.leafRange(first, first + width);
    // Verified before it is cached, so a cache hit needs no check.
    const leaves = await this.#ctx.verify.rows(tree, first, first + width, rows);
    const bundle = encodeEntryBundle(leaves.map((l) => l.leaf));
    if (width === TILE_WIDTH) this.#bundles.set(index, bundle);
    return bundle;
  }
}

/** An entry from its verified leaf. */
function toEntry(index: number, leaf: Uint8Array, leafHash: Uint8Array): LogEntry {
  const { id, timestamp, submitter, payload } = decodeLeaf(leaf);
  return { index, id: formatUuid(id), timestamp, submitter, payload, leaf, leafHash };
}
