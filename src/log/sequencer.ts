/**
 * @module
 * The sequencer: takes batches off the queue and makes them durable entries of the log.
 *
 * Order of durability for every batch — the invariant everything else rests on (spec/storage.md,
 * "Crash model"):
 *   1. prepare: dedup against storage, assign contiguous indices, ids and timestamps (never
 *      decreasing: ids.ts), encode the leaves, append their hashes to the tree (in memory);
 *   2. sign a checkpoint for the new size (it extends the last one: same tree, more leaves);
 *   3. commit: ONE atomic, durable write through the store (LogStore.commit: entries, lookup
 *      keys, touched strata, new tree state and that checkpoint), read back;
 *   4. only then release the checkpoint and answer the submitters, with receipts against it.
 * A failed write fails its batch's submitters (resubmitting with the same idempotency key is
 * safe: dedup returns the original if it did land) and stops the log (recovery.ts) until storage
 * is recovered and the tree reloaded.
 *
 * Two batches are in flight at most: while one is committed (under the write lock), the next is
 * prepared, so the CPU does not idle through each fsync. A store that keeps the leaves apart
 * (LogStore.stageLeaves) starts writing the next batch's leaves as soon as it is prepared; that
 * batch's own write still waits for them, so step 3's order holds for every batch.
 */
import { bytesEqual } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { encodeLeafInto, ID_SIZE, leafSize } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import { base64 } from "../platform/base64.js";
import { EntryBatch, type StratumWrite, type TreeState } from "../storage/log-store.js";
import type { LogContext } from "./context.js";
import type { Publisher } from "./publisher.js";
import { follow, type Pending, type SubmissionQueue } from "./queue.js";
import type { Reader } from "./reader.js";
import { Receipt } from "./receipt.js";

interface PreparedBatch {
  readonly epoch: number;
  readonly started: number;
  /** The new entries, packed: fresh[i] is entry i (index entries.start + i). */
  readonly entries: EntryBatch;
  readonly timestamps: Float64Array;
  readonly keyAliases: { keyHash: Uint8Array; index: number }[];
  readonly strata: StratumWrite[];
  readonly fresh: Pending[];
  readonly existing: [Pending, number][];
  /** Tree size, root and state once this batch is in (state undefined: nothing new). */
  readonly size: number;
  readonly root: Uint8Array;
  readonly state: TreeState | undefined;
  /** The store's leaves write, started once the leaves were encoded (LogStore.stageLeaves). */
  readonly leavesStaged: Promise<boolean> | undefined;
}

/** What storage dedup decided for each submission of a batch. */
interface Dedup {
  readonly fresh: Pending[];
  readonly existing: [Pending, number][];
  readonly keyAliases: { keyHash: Uint8Array; index: number }[];
}

const hex = base64;

export class Sequencer {
  readonly #ctx: LogContext;
  readonly #queue: SubmissionQueue;
  readonly #publisher: Publisher;
  readonly #reader: Reader;
  #draining: Promise<void> | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;

  constructor(ctx: LogContext, queue: SubmissionQueue, publisher: Publisher, reader: Reader) {
    this.#ctx = ctx;
    this.#queue = queue;
    this.#publisher = publisher;
    this.#reader = reader;
  }

  /** Nothing queued or being sequenced. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.#draining === undefined;
  }

  /** Starts a drain: at once for a full batch, else on the next turn or after the batch age. */
  schedule(): void {
    if (this.#draining !== undefined || this.#flushTimer !== undefined) return;
    const start = () => {
      this.#flushTimer = undefined;
      this.#draining = this.#drain().finally(() => {
        this.#draining = undefined;
        if (this.#queue.length > 0 && this.#ctx.status === "open") this.schedule();
      });
    };
    const { batchMaxEntries, batchMaxAgeMs } = this.#ctx.settings;
    if (this.#queue.length >= batchMaxEntries) start();
    else if (batchMaxAgeMs <= 0) this.#flushTimer = setImmediate(start);
    else this.#flushTimer = setTimeout(start, batchMaxAgeMs);
  }

  /** At close: cancels a pending start, waits for the drain under way, then drains the rest. */
  async flush(): Promise<void> {
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer as ReturnType<typeof setTimeout>);
      clearImmediate(this.#flushTimer as ReturnType<typeof setImmediate>);
      this.#flushTimer = undefined;
    }
    await this.#draining;
    await this.#drain();
  }

  async #drain(): Promise<void> {
    const ctx = this.#ctx;
    let committing: Promise<void> | undefined;
    while (this.#queue.length > 0 && (ctx.status === "open" || ctx.status === "closing")) {
      const prepared = await this.#prepare(this.#queue.take(ctx.settings.batchMaxEntries));
      await committing;
      committing =
        prepared === undefined ? undefined : ctx.writes.run(() => this.#commit(prepared));
    }
    await committing;
  }

  /** Step 1: dedup against storage, then ids, leaves and the tree append. Memory and reads only. */
  async #prepare(batch: Pending[]): Promise<PreparedBatch | undefined> {
    const ctx = this.#ctx;
    if (ctx.status === "failed") {
      for (const p of batch) p.reject(ctx.failure!);
      return undefined;
    }
    const epoch = ctx.epoch;
    const started = performance.now();
    let dedup: Dedup;
    try {
      dedup = await this.#dedup(batch);
    } catch (e) {
      for (const p of batch) p.reject(storageError(e, false));
      return undefined;
    }
    if (epoch !== ctx.epoch) {
      // The tree was reloaded while we read: prepare again on the new one.
      this.#queue.requeue(batch);
      return undefined;
    }
    const { fresh } = dedup;
    const n = fresh.length;
    const byPayload = ctx.dedup === "payload";
    const start = ctx.tree.size;
    // Packed (storage/entry-batch.ts): a few buffers for the whole batch, no objects per entry
    // that would live through the commit. Each leaf is encoded after a spare byte that holds the
    // RFC 6962 leaf prefix, so it is hashed where it lies.
    const ids = new Uint8Array(n * ID_SIZE);
    const timestamps = new Float64Array(n);
    ctx.ids.issueInto(n, ids, timestamps);
    const ends = new Uint32Array(n);
    let total = 0;
    // A plain loop (no callback): this runs for every entry.
    for (let i = 0; i < n; i++) {
      const p = fresh[i]!;
      total +=
        1 + leafSize({ timestamp: timestamps[i]!, submitter: p.submitter, payload: p.payload });
      ends[i] = total;
    }
    const bytes = new Uint8Array(total);
    const leafHashes = new Uint8Array(n * 32);
    const hashes: Uint8Array[] = new Array(n);
    // Per entry, only when some entry has one: most batches carry neither.
    const keyHashes: (Uint8Array | undefined)[] = [];
    const payloadHashes: (Uint8Array | undefined)[] = [];
    let keyed = false;
    for (let i = 0; i < n; i++) {
      const p = fresh[i]!;
      const from = i === 0 ? 0 : ends[i - 1]!;
      // bytes[from] stays 0x00: the leaf prefix.
      encodeLeafInto(
        {
          id: ids.subarray(i * ID_SIZE, (i + 1) * ID_SIZE),
          timestamp: timestamps[i]!,
          submitter: p.submitter,
          payload: p.payload,
        },
        bytes,
        from + 1,
      );
      leafHashes.set(sha256(bytes.subarray(from, ends[i]!)), i * 32);
      hashes[i] = leafHashes.subarray(i * 32, i * 32 + 32);
      if (p.keyHash !== undefined) {
        keyHashes.length = n;
        keyHashes[i] = p.keyHash;
        keyed = true;
      }
      if (byPayload) payloadHashes[i] = p.payloadHash;
    }
    const entries = new EntryBatch({
      start,
      count: n,
      bytes,
      ends,
      ids,
      leafHashes,
      payloadHashes: byPayload ? payloadHashes : undefined,
      keyHashes: keyed ? keyHashes : undefined,
    });
    // The leaves go to storage now, while the tree is extended and the previous batch's write
    // is under way; this batch's own write waits for them (commit). Handled here as well: a
    // batch refused at commit (an earlier one failed) never awaits its stage.
    const leavesStaged = n > 0 ? ctx.store.stageLeaves?.(entries) : undefined;
    leavesStaged?.catch(() => {});
    const strata = n > 0 ? ctx.tree.append(hashes) : [];
    const state = n > 0 ? { size: ctx.tree.size, compact: ctx.tree.compactHashes() } : undefined;
    return {
      epoch,
      started,
      entries,
      timestamps,
      keyAliases: dedup.keyAliases,
      strata,
      fresh,
      existing: dedup.existing,
      size: ctx.tree.size,
      root: ctx.tree.root(),
      state,
      leavesStaged,
    };
  }

  /**
   * Storage dedup by the log's rule: which submissions are new, which are answered with an
   * existing entry (a retry of a key, or a known payload under payload dedup), which are
   * refused (CONFLICT: a key used for another payload).
   */
  async #dedup(batch: Pending[]): Promise<Dedup> {
    const ctx = this.#ctx;
    // Under payload dedup every payload is looked up; under key dedup only the keys (an unkeyed
    // entry is new by definition: no read, and no payload index written).
    const byPayload = ctx.dedup === "payload";
    const keyed = batch.filter((p) => p.keyHash !== undefined);
    const [byHash, byKey] = await Promise.all([
      byPayload ? ctx.store.findByPayload(batch.map((p) => p.payloadHash!)) : [],
      ctx.store.findByKey(keyed.map((p) => p.keyHash!)),
    ]);
    /** Under key dedup: the stored payload of each key's entry, to tell a retry from a CONFLICT. */
    const keyPayloads = byPayload ? undefined : await this.#reader.storedPayloads(byKey);
    const keyIndex = new Map<Pending, number | undefined>();
    for (let i = 0; i < keyed.length; i++) keyIndex.set(keyed[i]!, byKey[i]);

    const out: Dedup = { fresh: [], existing: [], keyAliases: [] };
    const batchKeys = new Map<string, Pending>();
    batch.forEach((p, i) => {
      const knownKey = keyIndex.get(p);
      // The entry that already holds this payload: under payload dedup, any; under key dedup,
      // only the key's own entry (a retry).
      let payloadIndex: number | undefined;
      if (byPayload) payloadIndex = byHash[i];
      else if (knownKey !== undefined) {
        const stored = keyPayloads!.get(knownKey);
        if (stored === undefined) {
          p.reject(
            new VellumError("INTEGRITY_FAILURE", `entry ${knownKey} is missing from storage`),
          );
          return;
        }
        if (bytesEqual(stored, p.payload)) payloadIndex = knownKey;
      }
      if (p.keyHash !== undefined) {
        const k = hex(p.keyHash);
        const claimed = batchKeys.get(k);
        if (
          (knownKey !== undefined && knownKey !== payloadIndex) ||
          (claimed !== undefined && !bytesEqual(claimed.payload, p.payload))
        ) {
          p.reject(
            new VellumError("CONFLICT", "this idempotency key was used for another payload"),
          );
          return;
        }
        if (claimed !== undefined && !byPayload) {
          // The key twice in one batch (the in-flight map normally prevents it): one entry.
          follow(claimed, (r, e) => (r === undefined ? p.reject(e) : p.resolve(r.asDuplicate())));
          return;
        }
        batchKeys.set(k, p);
      }
      if (payloadIndex === undefined) {
        out.fresh.push(p);
        return;
      }
      out.existing.push([p, payloadIndex]);
      if (p.keyHash !== undefined && knownKey === undefined) {
        out.keyAliases.push({ keyHash: p.keyHash, index: payloadIndex });
      }
    });
    return out;
  }

  /** Steps 2 to 4: sign, the one durable write, release, answer. Runs under the write lock. */
  async #commit(b: PreparedBatch): Promise<void> {
    const ctx = this.#ctx;
    if (b.epoch !== ctx.epoch) {
      // An earlier batch failed: this one was built on a tree that is being (or was) reloaded.
      const pending = [...b.fresh, ...b.existing.map(([p]) => p)];
      if (ctx.failure !== undefined) for (const p of pending) p.reject(ctx.failure);
      else this.#queue.requeue(pending);
      return;
    }
    try {
      // The batch's checkpoint is signed now and stored in the batch's own atomic write: one
      // fsync per batch, not two. It leaves this process only after that write is durable and
      // read back; if the write fails, the signature is dropped unseen with the rest.
      const signed =
        b.fresh.length > 0 ? ctx.signer.sign(b.size, b.root, ctx.nowSeconds()) : undefined;
      await ctx.store.commit({
        entries: b.entries,
        keyAliases: b.keyAliases,
        strata: b.strata,
        state: b.state,
        checkpoint: signed === undefined ? undefined : { size: b.size, note: signed.note },
        ...(b.leavesStaged !== undefined && { leavesStaged: b.leavesStaged }),
      });
      if (signed !== undefined) this.#publisher.released(signed);
    } catch (e) {
      ctx.fail(e);
      const err = storageError(e, true);
      for (const p of b.fresh) p.reject(err);
      for (const [p] of b.existing) p.reject(err);
      return;
    }
    // Bundles this batch completes, cached from memory: the archive reads each new one.
    this.#reader.committed(b.entries);
    this.#queue.count(b.fresh.length);
    ctx.config.onBatch?.({
      entries: b.fresh.length,
      duplicates: b.existing.length,
      ms: performance.now() - b.started,
    });
    this.#answer(b);
  }

  /** Receipts for the batch's submitters, once a published checkpoint covers it. */
  #answer(b: PreparedBatch): void {
    const ctx = this.#ctx;
    const signed = ctx.latest;
    const proofs = this.#reader.proofs;
    // `published`: a published checkpoint covers the batch (with a witness policy, one that met
    // its quorum). The receipt says `witnessed` only in that second case: a log without
    // witnesses publishes what it signs, and nobody else has seen it.
    const answer = (published: boolean) => {
      const cp = published ? this.#publisher.published! : signed;
      const size = cp.checkpoint.size;
      const witnessed = published && ctx.witnessed;
      const e = b.entries;
      for (let i = 0; i < b.fresh.length; i++) {
        const p = b.fresh[i]!;
        p.resolve(
          new Receipt(
            e.start + i,
            e.id(i),
            b.timestamps[i]!,
            e.leafHash(i),
            cp.note,
            size,
            false,
            proofs,
            witnessed,
            p.submitter,
          ),
        );
      }
    };
    if (!ctx.witnessed) {
      // Answered on the next turn of the event loop, not now: the submitters' continuations
      // (receipts, HTTP responses) would otherwise run before the drain issues the next batch's
      // write. This way that write and its fsync are under way while they run.
      setImmediate(answer, true);
    } else {
      // Answer once witnessed (or after the bound), without holding up the next batch.
      void this.#publisher
        .waitPublished(signed.checkpoint.size, ctx.config.receiptWaitMs ?? 3000)
        .then(answer);
    }
    for (const [p, index] of b.existing) {
      this.#reader.receiptFor(index, p.payloadHash).then(
        (r) => p.resolve(r.asDuplicate()),
        (e) => p.reject(e),
      );
    }
  }
}

export function storageError(e: unknown, mayHaveLanded: boolean): VellumError {
  const why = e instanceof Error ? e.message : String(e);
  return new VellumError(
    "STORAGE_FAILURE",
    mayHaveLanded
      ? `storage failed while writing this entry (${why}); it may or may not be in the log: resubmit it with the same idempotency key, which returns the original if it landed`
      : `storage failed before this entry was written (${why}); it is not in the log: resubmit it`,
    { cause: e },
  );
}
