/**
 * @module
 * One log: the façade the server and CLI use. One instance per log (own origin, key and store),
 * so a process can host several. The work is done by its parts, which share a LogContext
 * (context.ts):
 *   queue.ts      pending submissions, back-pressure, in-flight dedup
 *   sequencer.ts  batches: dedup against storage, integrate, sign, the one durable write, answers
 *                 (the order of durability is stated there)
 *   publisher.ts  which checkpoint is published: witnessing, idle re-signing
 *   recovery.ts   start-up guards, loading, fail-stop and recovery
 *   reader.ts     entries, proofs, receipts, tiles and bundles of what is published
 * and reach storage only through the LogStore seam (src/storage/log-store.ts).
 *
 * Lifecycle: open() loads behind the guards (and, with witnesses, waits for the rollback check),
 * signs what storage holds beyond its checkpoint, then serves; close() stops accepting, sequences
 * everything queued, signs a final checkpoint and stops the timers — the caller closes storage.
 */
import { VellumError } from "../core/errors.js";
import { KvLogStore } from "../storage/kv-log-store.js";
import type { LogStore } from "../storage/log-store.js";
import type {
  LogConfig,
  LogEntry,
  Status,
  Submission,
  SubmitOptions,
  SubmitOutcome,
} from "./config.js";
import { LogContext, type Settings } from "./context.js";
import type { DedupMode } from "./dedup.js";
import { Publisher } from "./publisher.js";
import { SubmissionQueue } from "./queue.js";
import { Reader } from "./reader.js";
import type { Receipt } from "./receipt.js";
import { Recovery } from "./recovery.js";
import { RollbackCheck, type RollbackCheckStatus } from "./rollback-check.js";
import { Sequencer } from "./sequencer.js";
import type { CheckpointSigner, SignedCheckpoint } from "./signer.js";

export type {
  BatchStats,
  FailureEvent,
  LogConfig,
  LogEntry,
  Submission,
  SubmitOptions,
  SubmitOutcome,
} from "./config.js";
export { DEFAULTS } from "./config.js";

function storeOf(config: LogConfig): LogStore {
  if (config.store !== undefined) return config.store;
  if (config.kv !== undefined) return new KvLogStore(config.kv, config.entries);
  throw new VellumError("INTERNAL", "a log needs a store (or a KeyValueStore namespace)");
}

export class Log {
  readonly origin: string;
  readonly signer: CheckpointSigner;
  readonly #ctx: LogContext;
  readonly #queue: SubmissionQueue;
  readonly #publisher: Publisher;
  readonly #reader: Reader;
  readonly #sequencer: Sequencer;
  readonly #recovery: Recovery;
  #startCheck: RollbackCheck | undefined;

  private constructor(config: LogConfig) {
    const ctx = new LogContext(config, storeOf(config));
    this.#ctx = ctx;
    this.origin = config.origin;
    this.signer = ctx.signer;
    this.#publisher = new Publisher(ctx);
    this.#reader = new Reader(ctx, this.#publisher);
    this.#queue = new SubmissionQueue(
      ctx,
      () => this.#checkAccepting(),
      () => this.#sequencer.schedule(),
    );
    this.#sequencer = new Sequencer(ctx, this.#queue, this.#publisher, this.#reader);
    this.#recovery = new Recovery(ctx, this.#publisher, this.#queue, () =>
      this.#sequencer.schedule(),
    );
    ctx.fail = (cause) => this.#recovery.fail(cause);
  }

  /**
   * Opens (or creates) the log, after the start-up guards pass. With witnesses, it first asks
   * them what they cosigned (RollbackCheck): rejects with STATE_MISMATCH if one proves storage
   * behind; if too few answer, resolves with the log `checking` (signing nothing, accepting no
   * entries) while it asks again in the background.
   */
  static async open(config: LogConfig): Promise<Log> {
    const log = new Log(config);
    const ctx = log.#ctx;
    await log.#recovery.openDedup();
    const witnesses = config.witnesses;
    await ctx.writes.run(() => log.#recovery.load(witnesses === undefined));
    if (witnesses !== undefined) {
      const check = new RollbackCheck(
        witnesses,
        config.origin,
        { note: ctx.latest.note, size: ctx.latest.checkpoint.size },
        (from, to) => ctx.tree.consistencyProof(from, to),
        {
          retryMs: config.witnessRetryMs ?? 1000,
          ...(config.onStartCheck === undefined ? {} : { onRound: config.onStartCheck }),
        },
      );
      log.#startCheck = check;
      if (!(await check.round())) {
        ctx.status = "checking";
        void check
          .untilPassed()
          .then((passed) => (passed && ctx.status === "checking" ? log.#begin() : undefined))
          .catch((e) => {
            if (ctx.status !== "checking") return;
            ctx.status = "failed";
            ctx.failure = e;
          });
        return log;
      }
    }
    await log.#begin();
    return log;
  }

  /** Once the start-up checks passed: signs what storage holds beyond its checkpoint, serves. */
  async #begin(): Promise<void> {
    const ctx = this.#ctx;
    // Entries written durably but never covered by a checkpoint (a crash between commit and release).
    if (ctx.tree.size > ctx.latest.checkpoint.size) {
      await ctx.writes.run(() => this.#publisher.publish(ctx.tree.size, ctx.tree.root()));
    }
    await this.#publisher.findPublished();
    ctx.status = "open";
    this.#publisher.startResigning(() => ctx.status === "open" && this.#sequencer.idle);
  }

  #checkAccepting(): void {
    const { status, failure } = this.#ctx;
    if (status === "open" || status === "recovering") return;
    if (status === "failed") throw failure!;
    if (status === "checking") {
      throw new VellumError(
        "UNAVAILABLE",
        `the log is starting: ${this.#startCheck!.status().detail}`,
        { retryAfterMs: 5000 },
      );
    }
    throw new VellumError("UNAVAILABLE", `the log is ${status}; it accepts no entries`);
  }

  /**
   * Stops acknowledgements because something outside storage that they depend on failed (the
   * rollback marker outside the data directory): as a failed write; recovery runs `recoverFirst`
   * (e.g. rewrite the marker) before reopening storage and reloading.
   */
  fail(cause: unknown, recoverFirst: () => Promise<void>): void {
    this.#recovery.fail(cause, recoverFirst);
  }

  /** The failure that stops acknowledgements (status "failed"), if any. */
  get failure(): VellumError | undefined {
    return this.#ctx.failure;
  }

  // Submissions (queue.ts)

  /** Queues one entry; resolves once it is durably in the log under a signed checkpoint. */
  submit(payload: Uint8Array, options: SubmitOptions = {}): Promise<Receipt> {
    return this.#queue.submit(payload, options);
  }

  /** Many entries, one promise: receipts in order, or the first refusal (queue.ts). */
  submitMany(payloads: readonly Uint8Array[], options: SubmitOptions = {}): Promise<Receipt[]> {
    return this.#queue.submitMany(payloads, options);
  }

  /** Many entries with their own options: each one's receipt or refusal, in order (queue.ts). */
  submitEach(items: readonly Submission[]): Promise<SubmitOutcome[]> {
    return this.#queue.submitEach(items);
  }

  /**
   * Stops accepting entries, sequences everything queued, signs a final checkpoint, and stops
   * the timers. The caller closes the storage afterwards.
   */
  async close(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.status === "closed" || ctx.status === "closing") return;
    const wasOpen = ctx.status === "open";
    ctx.status = "closing";
    this.#startCheck?.cancel();
    this.#publisher.stopResigning();
    await this.#sequencer.flush();
    if (wasOpen) {
      const { size, rootHash } = ctx.latest.checkpoint;
      await ctx.writes.run(() => this.#publisher.publish(size, rootHash)).catch(() => undefined);
    }
    this.#queue.rejectAll(new VellumError("UNAVAILABLE", "the log is closed"));
    ctx.status = "closed";
  }

  // State

  /** The latest checkpoint the log signed (and stored). */
  get checkpoint(): SignedCheckpoint {
    return this.#ctx.latest;
  }

  /**
   * The latest published checkpoint: with witnesses, the latest that met the quorum (undefined
   * until one does); without, the latest signed.
   */
  get published(): SignedCheckpoint | undefined {
    return this.#publisher.published;
  }

  witnessStatus() {
    return this.#ctx.config.witnesses?.status() ?? [];
  }

  get size(): number {
    return this.#ctx.latest.checkpoint.size;
  }

  get status(): Status {
    return this.#ctx.status;
  }

  /** With witnesses: the start-up rollback check (what it waits for, or why it failed). */
  get startCheck(): RollbackCheckStatus | undefined {
    return this.#startCheck?.status();
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  get sequenced(): number {
    return this.#queue.sequenced;
  }

  get settings(): Readonly<Settings> {
    return this.#ctx.settings;
  }

  /** The dedup rule this log follows (src/log/dedup.ts). */
  get dedup(): DedupMode {
    return this.#ctx.dedup;
  }

  // Reads (reader.ts): only what a published checkpoint covers.

  checkpointAt(size: number): Promise<string> {
    return this.#reader.checkpointAt(size);
  }

  /** Up to `limit` kept checkpoints, largest first, none beyond the published size (reader.ts). */
  recentCheckpoints(limit: number): Promise<string[]> {
    return this.#reader.recentCheckpoints(limit);
  }

  entry(index: number): Promise<LogEntry> {
    return this.#reader.entry(index);
  }

  entryById(id: Uint8Array): Promise<LogEntry> {
    return this.#reader.entryById(id);
  }

  entryByLeafHash(leafHash: Uint8Array): Promise<LogEntry> {
    return this.#reader.entryByLeafHash(leafHash);
  }

  indexOfLeafHash(leafHash: Uint8Array): Promise<number> {
    return this.#reader.indexOfLeafHash(leafHash);
  }

  entries(start: number, limit: number): Promise<LogEntry[]> {
    return this.#reader.entries(start, limit);
  }

  /** The leaves of published entries [start, start+limit), in order (see Reader.leaves). */
  leaves(start: number, limit: number): Promise<Uint8Array[]> {
    return this.#reader.leaves(start, limit);
  }

  multiproof(indices: readonly number[], size: number): Promise<Uint8Array[]> {
    return this.#reader.multiproof(indices, size);
  }

  rootAt(size: number): Promise<Uint8Array> {
    return this.#reader.rootAt(size);
  }

  inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    return this.#reader.inclusionProof(index, size);
  }

  consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    return this.#reader.consistencyProof(size1, size2);
  }

  receipt(index: number): Promise<Receipt> {
    return this.#reader.receipt(index);
  }

  hashTile(level: number, index: number, width: number): Promise<Uint8Array> {
    return this.#reader.hashTile(level, index, width);
  }

  entryBundle(index: number, width: number): Promise<Uint8Array> {
    return this.#reader.entryBundle(index, width);
  }
}
