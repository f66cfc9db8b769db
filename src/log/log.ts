/**
 * @module
 * One log: its queue, sequencer, tree, checkpoints and reads. One instance per log (own origin,
 * key and storage namespace), so a process can host several.
 *
 * Order of durability for every batch (the invariant everything else rests on; spec/storage.md,
 * "Crash model"):
 *   1. dedup against storage, assign contiguous indices, ids and timestamps, append to the tree;
 *   2. sign a checkpoint for the new size (it extends the last one: same tree, more leaves);
 *   3. ONE atomic, synced write: entries, lookup keys, touched strata, new tree state and that
 *      checkpoint; read back;
 *   4. only then release the checkpoint and answer the submitters, with receipts against it.
 * Fail-stop (spec/storage.md, "Storage failures"): a failed write fails its batch's submitters
 * (resubmitting with the same idempotency key is safe: dedup returns the original if it did
 * land), and the log acknowledges nothing more until the store has been recovered (reopened) and
 * the tree reloaded from it and checked against the last checkpoint released; it retries that
 * with back-off, and stops for good when what storage holds contradicts what was released. Reads
 * only see released sizes.
 * Dedup (step 1) follows the log's stored rule (dedup.ts): by idempotency key only, or also by
 * payload; the in-flight dedup in #enqueue and the storage dedup in #prepare apply the same one.
 */
import { bytesEqual } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import {
  decodeLeaf,
  encodeLeafAndHash,
  formatUuid,
  isValidSubmitter,
  MAX_PAYLOAD_SIZE,
  MAX_SUBMITTER_SIZE,
} from "../core/entry.js";
import { check, isVellumError, VellumError } from "../core/errors.js";
import { checkSize } from "../core/merkle.js";
import { verifyQuorum } from "../core/policy.js";
import { encodeEntryBundle, TILE_WIDTH } from "../core/tiles.js";
import { base64 } from "../platform/base64.js";
import {
  describeStorageFailure,
  type StorageFailureClass,
  storageFailure,
  storageFailureClass,
} from "../storage/failure.js";
import type { KeyValueStore, WriteOp } from "../storage/types.js";
import { type DedupMode, decideDedup, decodeDedup, encodeDedup } from "./dedup.js";
import { IdGenerator, type IssuedId } from "./ids.js";
import { type IntegrityFailure, ReadVerifier } from "./integrity.js";
import {
  CHECKPOINT_RANGE,
  checkpointKey,
  DEDUP_KEY,
  decodeIndex,
  encodeIndex,
  entryKey,
  entryRange,
  idempotencyKey,
  idKey,
  leafHashKey,
  payloadKey,
  STATE_KEY,
} from "./layout.js";
import { LruCache } from "./lru.js";
import { Receipt } from "./receipt.js";
import { RollbackCheck, type RollbackCheckStatus } from "./rollback-check.js";
import { CheckpointSigner, type SignedCheckpoint } from "./signer.js";
import { decodeState, encodeState } from "./state.js";
import { Tree } from "./tree.js";
import type { WitnessCollector } from "./witnessing.js";

export interface LogConfig {
  readonly origin: string;
  /** The 32-byte Ed25519 seed of the log's key. */
  readonly seed: Uint8Array;
  /** This log's own namespace. */
  readonly kv: KeyValueStore;
  /** Most entries in one batch (one synced write). */
  readonly batchMaxEntries?: number;
  /** How long the first queued entry may wait for others before an idle log flushes. */
  readonly batchMaxAgeMs?: number;
  /** Back-pressure: most entries waiting to be sequenced. */
  readonly maxQueueEntries?: number;
  /** Back-pressure: most payload bytes waiting to be sequenced. */
  readonly maxQueueBytes?: number;
  /** An idle log re-signs its checkpoint (new timestamp) this often. 0 disables. */
  readonly checkpointIntervalMs?: number;
  /** Milliseconds since the Unix epoch (tests pin it). */
  readonly clock?: () => number;
  /**
   * The last checkpoint this log published, as remembered outside its storage (DATA/checkpoint).
   * If the storage is behind it, the data was rolled back (e.g. restored from an old backup).
   */
  readonly lastPublished?: string;
  /**
   * More checkpoints remembered outside storage, each checked like `lastPublished`: the state
   * mirror (`serve --state-mirror DIR`). `where` names it in messages.
   */
  readonly remembered?: readonly { readonly where: string; readonly note: string }[];
  /** Called after each checkpoint is durably stored (e.g. to update DATA/checkpoint). */
  readonly onCheckpoint?: (checkpoint: SignedCheckpoint) => void;
  /** Complete strata kept in memory (16 KiB each). */
  readonly cachedTiles?: number;
  /**
   * Bytes of full entry bundles kept in memory (default 64 MiB). A bound on bytes, not on
   * bundles: one bundle is 256 entries of up to 65,438 bytes (65,504 in older version-1 leaves), so anything from ~10 KB to 16.8 MB.
   */
  readonly bundleCacheBytes?: number;
  /**
   * Start even when the clock is behind the last checkpoint's time (it ran ahead once, then was
   * corrected). Nothing issued goes below what was issued before: checkpoint times stay at the
   * last one, and entry timestamps and ids at the last entry's millisecond (counting up within
   * it), until the clock catches up. Without it such a start is refused (STATE_MISMATCH).
   */
  readonly allowClockBehind?: boolean;
  /**
   * The dedup rule (src/log/dedup.ts): "key" (new logs' default) or "payload". Stored with the
   * log; undefined keeps the stored one (a log from before the setting: "payload").
   */
  readonly dedup?: DedupMode;
  /** Called when opening changed the stored dedup rule (for the server's log). */
  readonly onDedupChange?: (message: string) => void;
  /**
   * Witnesses to gather cosignatures from: only checkpoints meeting the policy's quorum are
   * published (`published`, GET /checkpoint) and put in receipts. Without it, every checkpoint
   * the log signs is published at once.
   */
  readonly witnesses?: WitnessCollector;
  /** How long a submitter waits for a witnessed checkpoint before getting a log-signed one. */
  readonly receiptWaitMs?: number;
  /** Pause between attempts when the quorum is not met (and the first pause of the start check). */
  readonly witnessRetryMs?: number;
  /**
   * With witnesses: the start-up rollback check's progress (src/log/rollback-check.ts), after
   * each round of questions and when it passes or fails (then the log is `failed`).
   */
  readonly onStartCheck?: (status: RollbackCheckStatus) => void;
  /** Called after each batch is durably stored and signed (for metrics). */
  readonly onBatch?: (batch: BatchStats) => void;
  /**
   * Called when the log stops acknowledging after a storage failure, and again for each failed
   * attempt to recover (for the server's log and metrics). `final` when it gave up.
   */
  readonly onFailure?: (error: VellumError, event: FailureEvent) => void;
  /** Called when the log acknowledges again after a failure. */
  readonly onRecovered?: (afterMs: number) => void;
  /** First pause before a recovery attempt; doubles up to `recoveryMaxMs` (defaults 100, 10,000). */
  readonly recoveryMinMs?: number;
  readonly recoveryMaxMs?: number;
  /**
   * Called when a read finds stored data that does not verify against the tree (for metrics;
   * the log has already logged it and the read fails with INTEGRITY_FAILURE).
   */
  readonly onIntegrityFailure?: (failure: IntegrityFailure) => void;
}

export interface FailureEvent {
  /** "failed": acknowledgements stopped; "retry": a recovery attempt failed; "final": gave up. */
  readonly kind: "failed" | "retry" | "final";
  /** The attempt that failed (0 for the failure itself). */
  readonly attempt: number;
  /** What kind of failure: ENOSPC, EIO, EROFS, EDQUOT, CORRUPTION or OTHER. */
  readonly class: StorageFailureClass;
}

export interface BatchStats {
  /** New entries the batch added. */
  readonly entries: number;
  /** Submissions answered with an existing entry. */
  readonly duplicates: number;
  /** Milliseconds from the batch leaving the queue to its checkpoint being stored. */
  readonly ms: number;
}

export const DEFAULTS = {
  batchMaxEntries: 4096,
  batchMaxAgeMs: 0,
  maxQueueEntries: 100_000,
  maxQueueBytes: 256 * 1024 * 1024,
  checkpointIntervalMs: 10_000,
};

export interface SubmitOptions {
  /**
   * What makes a resubmission the same entry: resubmitting with it returns the original entry,
   * never a new one (another payload with it is a CONFLICT). A client's Idempotency-Key, or an
   * event's own unique id.
   */
  readonly idempotencyKey?: string;
  /**
   * Who submits (the token's public id; 1-64 printable ASCII characters): committed to in the
   * leaf (version 2). Without one the leaf is version 1.
   */
  readonly submitter?: string;
}

/** One entry of a submitEach() call. */
export interface Submission extends SubmitOptions {
  readonly payload: Uint8Array;
}

/** What submitEach() answers for one entry: its receipt, or why it was refused. */
export type SubmitOutcome = Receipt | { readonly error: unknown };

export interface LogEntry {
  readonly index: number;
  readonly id: string;
  readonly timestamp: number;
  /** Who submitted it (version-2 leaves); undefined for version-1 leaves. */
  readonly submitter: string | undefined;
  readonly payload: Uint8Array;
  readonly leaf: Uint8Array;
  readonly leafHash: Uint8Array;
}

/**
 * How a submitter is answered: `slot` is its position in a submitMany() or submitEach() call (0
 * for submit()).
 */
type Answer = (r: Receipt, slot: number) => void;
type Refusal = (e: unknown, slot: number) => void;

/**
 * A queued submission. A class with methods rather than an object of closures: this is made for
 * every entry, and three closures per entry were a measurable share of the submit path's garbage.
 */
class Pending {
  readonly payload: Uint8Array;
  /** Under payload dedup only. */
  readonly payloadHash: Uint8Array | undefined;
  readonly keyHash: Uint8Array | undefined;
  readonly submitter: string | undefined;
  /**
   * Its keys in the log's in-flight maps, removed once it settles: `dedupId` in #inflight (its
   * payload hash under payload dedup, its key hash under key dedup, none for an unkeyed entry
   * under key dedup), `keyId` in #inflightKeys (under payload dedup, when it has a key).
   */
  readonly dedupId: string | undefined;
  readonly keyId: string | undefined;
  readonly #inflight: Map<string, Pending>;
  readonly #inflightKeys: Map<string, string>;
  readonly #ok: Answer;
  readonly #fail: Refusal;
  readonly #slot: number;
  /** Others waiting on this submission: identical payloads, or the same key in flight. */
  followers?: ((receipt: Receipt | undefined, error: unknown) => void)[];

  constructor(
    payload: Uint8Array,
    payloadHash: Uint8Array | undefined,
    keyHash: Uint8Array | undefined,
    submitter: string | undefined,
    dedupId: string | undefined,
    keyId: string | undefined,
    inflight: Map<string, Pending>,
    inflightKeys: Map<string, string>,
    ok: Answer,
    fail: Refusal,
    slot: number,
  ) {
    this.payload = payload;
    this.payloadHash = payloadHash;
    this.keyHash = keyHash;
    this.submitter = submitter;
    this.dedupId = dedupId;
    this.keyId = keyId;
    this.#inflight = inflight;
    this.#inflightKeys = inflightKeys;
    this.#ok = ok;
    this.#fail = fail;
    this.#slot = slot;
  }

  resolve(r: Receipt): void {
    this.#settle(r, undefined);
  }

  reject(e: unknown): void {
    this.#settle(undefined, e);
  }

  #settle(r: Receipt | undefined, e: unknown): void {
    if (this.dedupId !== undefined) this.#inflight.delete(this.dedupId);
    if (this.keyId !== undefined) this.#inflightKeys.delete(this.keyId);
    if (r === undefined) this.#fail(e, this.#slot);
    else this.#ok(r, this.#slot);
    for (const f of this.followers ?? []) f(r, e);
  }
}

interface PreparedBatch {
  readonly epoch: number;
  readonly started: number;
  readonly batch: Pending[];
  readonly ops: WriteOp[];
  readonly fresh: Pending[];
  /** Index of fresh[0]; fresh[i] got index start + i, ids[i] and leafHashes[i]. */
  readonly start: number;
  readonly ids: readonly IssuedId[];
  readonly leafHashes: readonly Uint8Array[];
  readonly existing: [Pending, number][];
  /** Tree size and root once this batch is in. */
  readonly size: number;
  readonly root: Uint8Array;
  readonly stateValue: Uint8Array | undefined;
}

/** Registers `f` to run when `p` settles. */
function follow(p: Pending, f: (receipt: Receipt | undefined, error: unknown) => void): void {
  if (p.followers === undefined) p.followers = [];
  p.followers.push(f);
}

/** `checking`: opened with witnesses, signing nothing until they confirm (rollback-check.ts). */
type Status = "checking" | "open" | "recovering" | "failed" | "closing" | "closed";

/** A Map key for a hash (native base64: this runs for every submission). */
const hex = base64;

/** The write that stores a signed checkpoint note under its size. */
function checkpointPut(signed: SignedCheckpoint): WriteOp {
  return {
    type: "put",
    key: checkpointKey(signed.checkpoint.size),
    value: new TextEncoder().encode(signed.note),
  };
}

export class Log {
  readonly origin: string;
  readonly signer: CheckpointSigner;
  readonly #kv: KeyValueStore;
  /** Checks every leaf a read returns against the tree before it is served. */
  readonly #verify: ReadVerifier;
  readonly #config: LogConfig;
  readonly #clock: () => number;
  readonly #opt: typeof DEFAULTS;

  #status: Status = "recovering";
  /** Bumped each time the tree is (re)loaded from storage or fails; prepared batches carry it. */
  #epoch = 0;
  /** Why the log does not acknowledge (status "failed"): what submitters are told. */
  #failure: VellumError | undefined;
  #recovering: Promise<void> | undefined;
  #tree!: Tree;
  #ids!: IdGenerator;
  #latest!: SignedCheckpoint;
  /** The latest checkpoint that met the witness quorum (all of #latest without witnesses). */
  #published: SignedCheckpoint | undefined;
  /** The log-signed note #published was cosigned from. */
  #witnessedFrom: string | undefined;
  #witnessing: Promise<void> | undefined;
  #startCheck: RollbackCheck | undefined;
  readonly #publishWaiters = new Set<() => void>();

  readonly #queue: Pending[] = [];
  #queuedBytes = 0;
  /** The dedup rule (decided at open: #openDedup). */
  #dedup: DedupMode = "key";
  /**
   * Submissions queued or being sequenced, for dedup before storage: by payload hash under
   * payload dedup (and their keys in #inflightKeys), by key hash under key dedup.
   */
  readonly #inflight = new Map<string, Pending>();
  readonly #inflightKeys = new Map<string, string>();
  #draining: Promise<void> | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  #resignTimer: ReturnType<typeof setInterval> | undefined;
  /** Serialises everything that writes (batches, re-signs, close). */
  #exclusive: Promise<unknown> = Promise.resolve();
  readonly #bundles: LruCache<number, Uint8Array>;
  #sequencedCount = 0;
  #rate = { since: 0, count: 0, perSecond: 0 };

  private constructor(config: LogConfig) {
    this.#config = config;
    this.origin = config.origin;
    this.signer = new CheckpointSigner(config.origin, config.seed);
    this.#kv = config.kv;
    this.#verify = new ReadVerifier(config.onIntegrityFailure);
    this.#clock = config.clock ?? Date.now;
    this.#bundles = new LruCache(config.bundleCacheBytes ?? 64 * 1024 * 1024, (b) => b.length);
    this.#opt = {
      batchMaxEntries: config.batchMaxEntries ?? DEFAULTS.batchMaxEntries,
      batchMaxAgeMs: config.batchMaxAgeMs ?? DEFAULTS.batchMaxAgeMs,
      maxQueueEntries: config.maxQueueEntries ?? DEFAULTS.maxQueueEntries,
      maxQueueBytes: config.maxQueueBytes ?? DEFAULTS.maxQueueBytes,
      checkpointIntervalMs: config.checkpointIntervalMs ?? DEFAULTS.checkpointIntervalMs,
    };
  }

  /**
   * Opens (or creates) the log, after the start-up guards in `#load` pass. With witnesses, it
   * first asks them what they cosigned (RollbackCheck): rejects with STATE_MISMATCH if one proves
   * storage behind; if too few answer, resolves with the log `checking` (signing nothing,
   * accepting no entries) while it asks again in the background.
   */
  static async open(config: LogConfig): Promise<Log> {
    const log = new Log(config);
    await log.#openDedup();
    const witnesses = config.witnesses;
    await log.#load(witnesses === undefined);
    if (witnesses !== undefined) {
      const check = new RollbackCheck(
        witnesses,
        config.origin,
        { note: log.#latest.note, size: log.#latest.checkpoint.size },
        (from, to) => log.#tree.consistencyProof(from, to),
        {
          retryMs: config.witnessRetryMs ?? 1000,
          ...(config.onStartCheck === undefined ? {} : { onRound: config.onStartCheck }),
        },
      );
      log.#startCheck = check;
      if (!(await check.round())) {
        log.#status = "checking";
        void check
          .untilPassed()
          .then((passed) => (passed && log.#status === "checking" ? log.#begin() : undefined))
          .catch((e) => {
            if (log.#status !== "checking") return;
            log.#status = "failed";
            log.#failure = e;
          });
        return log;
      }
    }
    await log.#begin();
    return log;
  }

  /** Once the start-up checks passed: signs what storage holds beyond its checkpoint, serves. */
  async #begin(): Promise<void> {
    // Entries written durably but never covered by a checkpoint (a crash between steps 2 and 4).
    if (this.#tree.size > this.#latest.checkpoint.size) {
      await this.#publish(this.#tree.size, this.#tree.root());
    }
    await this.#findPublished();
    this.#status = "open";
    if (this.#opt.checkpointIntervalMs > 0) {
      this.#resignTimer = setInterval(() => this.#resignIfIdle(), this.#opt.checkpointIntervalMs);
      this.#resignTimer.unref();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Start-up and recovery

  /**
   * Loads the tree and latest checkpoint from storage and refuses (STATE_MISMATCH) when they,
   * the key, the clock or the externally remembered checkpoints disagree. Never repairs.
   * `signUncovered` false leaves entries stored beyond the latest checkpoint unsigned (open()
   * signs them once the witnesses' rollback check passed).
   */
  async #load(signUncovered = true): Promise<void> {
    const kv = this.#kv;
    const [stateBytes, [latestEntry]] = await Promise.all([
      kv.get(STATE_KEY),
      kv.range({ ...CHECKPOINT_RANGE, reverse: true, limit: 1 }),
    ]);
    const external = [
      ...(this.#config.lastPublished === undefined
        ? []
        : [{ where: "DATA/checkpoint", note: this.#config.lastPublished }]),
      ...(this.#config.remembered ?? []),
    ];

    if (stateBytes === undefined) {
      const [anything] = await kv.range({
        gte: new Uint8Array(0),
        lt: Uint8Array.of(0xff),
        limit: 1,
      });
      if (latestEntry !== undefined || anything !== undefined) {
        throw new VellumError("STATE_MISMATCH", "storage holds log data but no tree state");
      }
      if (external.length > 0) {
        throw new VellumError(
          "STATE_MISMATCH",
          `storage is empty but this log has published checkpoints before (${external.map((e) => e.where).join(", ")}): the data is missing`,
        );
      }
      this.#tree = await Tree.load(kv, 0, [], this.#treeOptions());
      this.#ids = new IdGenerator(this.#clock);
      // A new log: its state and its first (empty) checkpoint in one write.
      const signed = this.signer.sign(0, this.#tree.root(), this.#nowSeconds());
      await kv.write([
        { type: "put", key: DEDUP_KEY, value: encodeDedup(this.#dedup) },
        { type: "put", key: STATE_KEY, value: encodeState({ size: 0, compact: [] }) },
        { type: "put", key: checkpointKey(0), value: new TextEncoder().encode(signed.note) },
      ]);
      this.#latest = signed;
      this.#config.onCheckpoint?.(signed);
      return;
    }

    const state = decodeState(stateBytes);
    if (latestEntry === undefined) {
      throw new VellumError("STATE_MISMATCH", "storage holds a tree but no signed checkpoint");
    }
    const latest = this.signer.open(new TextDecoder().decode(latestEntry[1]));
    const tree = await Tree.load(kv, state.size, state.compact, this.#treeOptions());
    await this.#checkCovers(tree, latest, "the latest stored checkpoint");
    if (this.#latest !== undefined) {
      // A reload after a failure: storage must still hold everything this process released.
      await this.#checkCovers(tree, this.#latest, "the last checkpoint this log released");
    }
    for (const { where, note } of external) {
      let remembered: SignedCheckpoint;
      try {
        remembered = this.signer.open(note);
      } catch (e) {
        throw new VellumError(
          "STATE_MISMATCH",
          `${where} is not a checkpoint of this log: ${(e as Error).message}`,
        );
      }
      // The tree must still hold what was published (a rollback loses entries); a checkpoint
      // record that was lost while its entries were stored is simply signed again below.
      await this.#checkCovers(tree, remembered, `the last published checkpoint (${where})`);
    }
    const nowSeconds = Math.floor(this.#clock() / 1000);
    if (nowSeconds < latest.time && this.#config.allowClockBehind !== true) {
      throw new VellumError(
        "STATE_MISMATCH",
        `the clock (${nowSeconds}) is ${latest.time - nowSeconds} s behind the last checkpoint's time (${latest.time}); fix the clock, or start with --allow-clock-behind (timestamps then stay at the last issued until the clock catches up)`,
      );
    }
    let lastId: Uint8Array | undefined;
    if (state.size > 0) {
      const last = await kv.get(entryKey(state.size - 1));
      if (last === undefined) {
        throw new VellumError("STATE_MISMATCH", `entry ${state.size - 1} is missing from storage`);
      }
      lastId = decodeLeaf(last).id;
    }
    this.#tree = tree;
    this.#epoch++;
    this.#ids = new IdGenerator(this.#clock, lastId);
    this.#latest = latest;
    // Entries written durably but never covered by a checkpoint (a crash between steps 2 and 4).
    if (signUncovered && state.size > latest.checkpoint.size) {
      await this.#publish(tree.size, tree.root());
    }
  }

  /**
   * Decides the dedup rule from the stored setting and the requested one (src/log/dedup.ts). A
   * new log stores it with its first write (#load); a change of an existing log's rule is
   * stored here.
   */
  async #openDedup(): Promise<void> {
    const [stored, state] = await this.#kv.getMany([DEDUP_KEY, STATE_KEY]);
    const decision = decideDedup(
      stored === undefined ? undefined : decodeDedup(stored),
      state !== undefined,
      this.#config.dedup,
    );
    this.#dedup = decision.mode;
    if (decision.changed !== undefined) {
      await this.#kv.write([{ type: "put", key: DEDUP_KEY, value: encodeDedup(decision.mode) }]);
      this.#config.onDedupChange?.(decision.changed);
    }
  }

  /** Refuses a tree that does not contain `cp` (too small, or another root at that size). */
  async #checkCovers(tree: Tree, cp: SignedCheckpoint, what: string): Promise<void> {
    const size = cp.checkpoint.size;
    if (size > tree.size) {
      throw new VellumError(
        "STATE_MISMATCH",
        `${what} has size ${size} but storage holds only ${tree.size} entries: data was lost or rolled back (restored from an old backup?)`,
      );
    }
    let matches = false;
    try {
      matches = await tree.verifyRootAt(size, cp.checkpoint.rootHash);
    } catch (e) {
      throw new VellumError(
        "STATE_MISMATCH",
        `${what} (size ${size}) cannot be checked against storage: ${(e as Error).message}`,
      );
    }
    if (!matches) {
      throw new VellumError(
        "STATE_MISMATCH",
        `${what} (size ${size}) has a different root than the stored tree: storage and checkpoints disagree`,
      );
    }
  }

  #treeOptions() {
    return this.#config.cachedTiles === undefined ? {} : { cachedTiles: this.#config.cachedTiles };
  }

  #nowSeconds(): number {
    const now = Math.floor(this.#clock() / 1000);
    // Checkpoint timestamps never go backwards, even if the clock does.
    return this.#latest === undefined ? now : Math.max(now, this.#latest.time);
  }

  /**
   * Signs and durably stores a checkpoint for the tree of `size` with `root`, which must be
   * durably stored already (the in-memory tree may be ahead: the next batch is being prepared).
   */
  async #publish(size: number, root: Uint8Array): Promise<void> {
    const signed = this.signer.sign(size, root, this.#nowSeconds());
    await this.#kv.write([checkpointPut(signed)]);
    // Not read back, unlike the batch: a checkpoint lost after this point is re-signed from the
    // stored tree on restart, and its signed body (hence every receipt's log signature) is the same.
    this.#released(signed);
  }

  /** `signed` is durably stored: it becomes the latest checkpoint (and goes to the witnesses). */
  #released(signed: SignedCheckpoint): void {
    this.#latest = signed;
    this.#config.onCheckpoint?.(signed);
    this.#afterSigning();
  }

  // ---------------------------------------------------------------------------------------
  // Publishing: straight away, or once the witnesses' quorum cosigned.

  #afterSigning(): void {
    if (this.#config.witnesses === undefined) {
      this.#setPublished(this.#latest);
      return;
    }
    this.#witnessing ??= this.#witnessLoop().finally(() => {
      this.#witnessing = undefined;
    });
  }

  /**
   * At start: without witnesses the latest signed checkpoint is published; with witnesses, the
   * newest stored one whose cosignatures meet the quorum (if any), and witnessing resumes.
   */
  async #findPublished(): Promise<void> {
    const collector = this.#config.witnesses;
    if (collector === undefined) {
      this.#setPublished(this.#latest);
      return;
    }
    const recent = await this.#kv.range({ ...CHECKPOINT_RANGE, reverse: true, limit: 64 });
    for (const [, value] of recent) {
      const note = new TextDecoder().decode(value);
      try {
        verifyQuorum(collector.policy, note);
        this.#setPublished(this.signer.open(note));
        break;
      } catch {
        // not witnessed (or not by enough of this policy's witnesses): look further back
      }
    }
    this.#afterSigning();
  }

  #setPublished(cp: SignedCheckpoint): void {
    this.#published = cp;
    for (const wake of this.#publishWaiters) wake();
  }

  /** Cosigns the newest log-signed checkpoint until one meets the quorum (retrying with a pause). */
  async #witnessLoop(): Promise<void> {
    const collector = this.#config.witnesses!;
    const retryMs = this.#config.witnessRetryMs ?? 1000;
    while (this.#status !== "closed" && this.#latest.note !== this.#witnessedFrom) {
      const basis = this.#latest;
      const result = await collector.cosign(basis.note, basis.checkpoint.size, (from, to) =>
        this.#tree.consistencyProof(from, to),
      );
      if (!result.quorum) {
        await new Promise((r) => setTimeout(r, retryMs).unref());
        continue;
      }
      const key = checkpointKey(basis.checkpoint.size);
      try {
        await this.#kv.write([{ type: "put", key, value: new TextEncoder().encode(result.note) }]);
      } catch (e) {
        // The log-signed note stays stored; witnessing goes on once storage is recovered.
        this.#fail(e);
        return;
      }
      this.#witnessedFrom = basis.note;
      this.#setPublished({ ...basis, note: result.note });
    }
  }

  /** Resolves true once a checkpoint of at least `size` is published, false after `ms`. */
  #waitPublished(size: number, ms: number): Promise<boolean> {
    if ((this.#published?.checkpoint.size ?? -1) >= size) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#publishWaiters.delete(wake);
        resolve(ok);
      };
      const wake = () => {
        if ((this.#published?.checkpoint.size ?? -1) >= size) done(true);
      };
      const timer = setTimeout(() => done(false), ms);
      this.#publishWaiters.add(wake);
    });
  }

  /**
   * Reads back a key the last write set. One cheap read per batch that turns a write the storage
   * acknowledged but did not apply into a failure *before* anything is signed or acknowledged.
   */
  async #confirm(key: Uint8Array, value: Uint8Array, what: string): Promise<void> {
    const stored = await this.#kv.get(key);
    if (stored === undefined || !bytesEqual(stored, value)) {
      throw new VellumError("STORAGE_FAILURE", `storage acknowledged ${what} but does not hold it`);
    }
  }

  /**
   * Fail-stop after a failed write (or a failed rollback marker, through `fail`): acknowledge
   * nothing more, refuse what is queued, and recover in the background. Idempotent while failed.
   */
  #fail(cause: unknown, recoverFirst?: () => Promise<void>): void {
    if (this.#status === "closed") return;
    const first = this.#failure === undefined;
    const why = describeStorageFailure(cause);
    const detail = cause instanceof Error ? cause.message : String(cause);
    this.#failure ??= new VellumError(
      "STORAGE_FAILURE",
      `${why}: the log stopped acknowledging after a storage failure and is recovering; nothing more is acknowledged until it has (${detail}). Retry shortly: an entry resubmitted with the same idempotency key that did land is answered as a duplicate`,
      { cause },
    );
    this.#epoch++; // batches prepared on the failed tree are refused, not committed
    if (this.#status === "open" || this.#status === "recovering") this.#status = "failed";
    this.#rejectQueue(this.#failure);
    if (first) {
      this.#config.onFailure?.(storageFailure("the log stopped acknowledging", cause), {
        kind: "failed",
        attempt: 0,
        class: storageFailureClass(cause),
      });
    }
    this.#recovering ??= this.#recoverLoop(recoverFirst).finally(() => {
      this.#recovering = undefined;
    });
  }

  /**
   * Stops acknowledgements because something outside storage that they depend on failed (the
   * rollback marker outside the data directory): as a failed write; recovery runs `recoverFirst`
   * (e.g. rewrite the marker) before reopening storage and reloading.
   */
  fail(cause: unknown, recoverFirst: () => Promise<void>): void {
    this.#fail(cause, recoverFirst);
  }

  /** The failure that stops acknowledgements (status "failed"), if any. */
  get failure(): VellumError | undefined {
    return this.#failure;
  }

  /**
   * Retries `recoverFirst`, the store's recovery (a reopen) and a reload of the tree from storage, checked against
   * the last checkpoint released, with doubling pauses, until both succeed or the log closes.
   * What storage holds contradicting what was released (STATE_MISMATCH) is final: the log stays
   * failed, since only an operator can tell which is right.
   */
  async #recoverLoop(recoverFirst: (() => Promise<void>) | undefined): Promise<void> {
    const started = performance.now();
    const min = this.#config.recoveryMinMs ?? 100;
    const max = this.#config.recoveryMaxMs ?? 10_000;
    for (let attempt = 1, pause = min; ; attempt++, pause = Math.min(max, pause * 2)) {
      await new Promise((r) => setTimeout(r, pause).unref());
      if (this.#status !== "failed") return;
      try {
        await recoverFirst?.();
        await this.#kv.recover();
        await this.#withLock(() => this.#load());
        if (this.#status !== "failed") return;
        this.#failure = undefined;
        this.#status = "open";
        this.#config.onRecovered?.(performance.now() - started);
        this.#afterSigning();
        if (this.#queue.length > 0) this.#schedule();
        return;
      } catch (e) {
        const final = isVellumError(e, "STATE_MISMATCH");
        const err = isVellumError(e) ? e : storageFailure("recovery", e);
        this.#config.onFailure?.(err, {
          kind: final ? "final" : "retry",
          attempt,
          class: storageFailureClass(e),
        });
        if (final) {
          this.#failure = new VellumError(
            "UNAVAILABLE",
            `the log stopped after a storage failure, and what storage holds now contradicts what it published (${err.message}); it must be restarted by an operator (see spec/storage.md, "Storage failures")`,
            { cause: e },
          );
          return;
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Submissions

  /** Queues one entry; resolves once it is durably in the log under a signed checkpoint. */
  submit(payload: Uint8Array, options: SubmitOptions = {}): Promise<Receipt> {
    return new Promise((resolve, reject) => this.#enqueue(payload, options, resolve, reject));
  }

  /**
   * Queues many entries at once (in-process appends in batches): one promise for all, resolving
   * to their receipts in order, or rejecting with the first refusal (the others may be stored:
   * resubmitting with the same keys is safe, duplicates return the originals). Cheaper per entry
   * than submit().
   */
  submitMany(payloads: readonly Uint8Array[], options: SubmitOptions = {}): Promise<Receipt[]> {
    return new Promise((resolve, reject) => {
      const out: Receipt[] = new Array(payloads.length);
      let left = payloads.length;
      let failed = false;
      if (left === 0) resolve(out);
      const fail = (e: unknown) => {
        if (!failed) reject(e);
        failed = true;
      };
      // One answer callback for the whole call (the slot says where a receipt goes), not one
      // closure per entry.
      const ok: Answer = (r, slot) => {
        out[slot] = r;
        if (--left === 0 && !failed) resolve(out);
      };
      for (let i = 0; i < payloads.length; i++) this.#enqueue(payloads[i]!, options, ok, fail, i);
    });
  }

  /**
   * Queues many entries, each with its own options: one promise for all, resolving (never
   * rejecting) to each one's receipt or refusal, in order. What a batch request needs: every
   * entry's own outcome, without a promise and closures per entry.
   */
  submitEach(items: readonly Submission[]): Promise<SubmitOutcome[]> {
    return new Promise((resolve) => {
      const out: SubmitOutcome[] = new Array(items.length);
      let left = items.length;
      if (left === 0) resolve(out);
      const settle = (outcome: SubmitOutcome, slot: number) => {
        out[slot] = outcome;
        if (--left === 0) resolve(out);
      };
      const refuse: Refusal = (error, slot) => settle({ error }, slot);
      // A Submission is its own SubmitOptions: no options object per entry.
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        this.#enqueue(item.payload, item, settle, refuse, i);
      }
    });
  }

  #enqueue(payload: Uint8Array, options: SubmitOptions, ok: Answer, fail: Refusal, slot = 0): void {
    try {
      this.#checkAccepting();
      // A plain if, not check(): the message would otherwise be built for every submission.
      if (payload.length > MAX_PAYLOAD_SIZE) {
        throw new VellumError(
          "TOO_LARGE",
          `payload is ${payload.length} bytes; the limit is ${MAX_PAYLOAD_SIZE} bytes`,
        );
      }
      if (options.submitter !== undefined && !isValidSubmitter(options.submitter)) {
        throw new VellumError(
          "MALFORMED",
          `a submitter is 1-${MAX_SUBMITTER_SIZE} characters of printable ASCII`,
        );
      }
      if (
        this.#queue.length >= this.#opt.maxQueueEntries ||
        this.#queuedBytes + payload.length > this.#opt.maxQueueBytes
      ) {
        throw new VellumError(
          "OVERLOADED",
          `the log's queue is full (${this.#queue.length} entries waiting); try again shortly`,
          { retryAfterMs: this.#retryAfterMs() },
        );
      }
    } catch (e) {
      fail(e, slot);
      return;
    }
    const keyHash =
      options.idempotencyKey === undefined
        ? undefined
        : sha256(new TextEncoder().encode(options.idempotencyKey));
    let payloadHash: Uint8Array | undefined;
    let dedupId: string | undefined;
    let keyId: string | undefined;
    if (this.#dedup === "payload") {
      payloadHash = sha256(payload);
      dedupId = hex(payloadHash);
      if (keyHash !== undefined) {
        keyId = hex(keyHash);
        const other = this.#inflightKeys.get(keyId);
        if (other !== undefined && other !== dedupId) {
          // The key is in flight with another payload. Which of the two owns it is decided by
          // storage, once that one lands: then this submission is sequenced (and is either the
          // key's original, answered as a duplicate, or a CONFLICT).
          follow(this.#inflight.get(other)!, () => this.#enqueue(payload, options, ok, fail, slot));
          return;
        }
      }
      const same = this.#inflight.get(dedupId);
      if (same !== undefined) {
        follow(same, (r, e) => (r === undefined ? fail(e, slot) : ok(r.asDuplicate(), slot)));
        return;
      }
    } else if (keyHash !== undefined) {
      // Key dedup: only the key identifies an entry (without one, every submission is new and
      // nothing is hashed or tracked here).
      dedupId = hex(keyHash);
      const same = this.#inflight.get(dedupId);
      if (same !== undefined) {
        if (bytesEqual(same.payload, payload)) {
          follow(same, (r, e) => (r === undefined ? fail(e, slot) : ok(r.asDuplicate(), slot)));
        } else {
          // The same key with another payload: sequenced once that one settled, when storage
          // says CONFLICT (or, if that one failed, lets this one have the key).
          follow(same, () => this.#enqueue(payload, options, ok, fail, slot));
        }
        return;
      }
    }
    const pending = new Pending(
      payload,
      payloadHash,
      keyHash,
      options.submitter,
      dedupId,
      keyId,
      this.#inflight,
      this.#inflightKeys,
      ok,
      fail,
      slot,
    );
    this.#queue.push(pending);
    this.#queuedBytes += payload.length;
    if (dedupId !== undefined) this.#inflight.set(dedupId, pending);
    if (keyId !== undefined) this.#inflightKeys.set(keyId, dedupId!);
    this.#schedule();
  }

  #checkAccepting(): void {
    if (this.#status === "open" || this.#status === "recovering") return;
    if (this.#status === "failed") throw this.#failure!;
    if (this.#status === "checking") {
      throw new VellumError(
        "UNAVAILABLE",
        `the log is starting: ${this.#startCheck!.status().detail}`,
        { retryAfterMs: 5000 },
      );
    }
    throw new VellumError("UNAVAILABLE", `the log is ${this.#status}; it accepts no entries`);
  }

  #retryAfterMs(): number {
    const rate = Math.max(this.#rate.perSecond, 1000);
    return Math.min(5000, Math.max(50, Math.ceil((this.#queue.length / rate) * 1000)));
  }

  #schedule(): void {
    if (this.#draining !== undefined || this.#flushTimer !== undefined) return;
    const start = () => {
      this.#flushTimer = undefined;
      this.#draining = this.#drain().finally(() => {
        this.#draining = undefined;
        if (this.#queue.length > 0 && this.#status === "open") this.#schedule();
      });
    };
    if (this.#queue.length >= this.#opt.batchMaxEntries) start();
    else if (this.#opt.batchMaxAgeMs <= 0) this.#flushTimer = setImmediate(start);
    else this.#flushTimer = setTimeout(start, this.#opt.batchMaxAgeMs);
  }

  /**
   * Sequences queued entries until the queue is empty (or the log cannot go on). Two batches are
   * in flight at most: while one is being written, synced and signed, the next one is prepared
   * (dedup reads, ids, leaves, tree append), so the CPU does not idle through each fsync.
   */
  async #drain(): Promise<void> {
    let committing: Promise<void> | undefined;
    while (this.#queue.length > 0 && (this.#status === "open" || this.#status === "closing")) {
      const batch = this.#queue.splice(0, this.#opt.batchMaxEntries);
      for (const p of batch) this.#queuedBytes -= p.payload.length;
      const prepared = await this.#prepare(batch);
      await committing;
      committing =
        prepared === undefined ? undefined : this.#withLock(() => this.#commit(prepared));
    }
    await committing;
  }

  #withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#exclusive.then(fn, fn);
    this.#exclusive = run.catch(() => undefined);
    return run;
  }

  /**
   * Steps 1 of the batch: dedup against storage, then ids, leaves and the tree append, giving
   * the one write that stores it all. Touches only memory and reads.
   */
  async #prepare(batch: Pending[]): Promise<PreparedBatch | undefined> {
    if (this.#status === "failed") {
      for (const p of batch) p.reject(this.#failure!);
      return undefined;
    }
    const epoch = this.#epoch;
    const started = performance.now();
    const kv = this.#kv;
    // Under payload dedup every payload is looked up; under key dedup only the keys (an unkeyed
    // entry is new by definition: no read, and no payload index written below).
    const byPayload = this.#dedup === "payload";
    const lookups: Uint8Array[] = byPayload ? batch.map((p) => payloadKey(p.payloadHash!)) : [];
    const keyed = batch.filter((p) => p.keyHash !== undefined);
    for (const p of keyed) lookups.push(idempotencyKey(p.keyHash!));
    const keysAt = byPayload ? batch.length : 0;
    let found: (Uint8Array | undefined)[] = [];
    /** Under key dedup: the stored payload of each key's entry, to tell a retry from a CONFLICT. */
    let keyPayloads: Map<number, Uint8Array | undefined> | undefined;
    try {
      if (lookups.length > 0) found = await kv.getMany(lookups);
      if (!byPayload) keyPayloads = await this.#storedPayloads(found);
    } catch (e) {
      for (const p of batch) p.reject(storageError(e, false));
      return undefined;
    }
    if (epoch !== this.#epoch) {
      // The tree was reloaded while we read: prepare again on the new one.
      this.#requeue(batch);
      return undefined;
    }
    const keyIndex = new Map<Pending, number | undefined>();
    keyed.forEach((p, i) => {
      const v = found[keysAt + i];
      keyIndex.set(p, v === undefined ? undefined : decodeIndex(v));
    });

    const ops: WriteOp[] = [];
    const fresh: Pending[] = [];
    /** The payload key of each fresh entry: the one built for the dedup lookup, reused. */
    const freshPayloadKeys: Uint8Array[] = [];
    const existing: [Pending, number][] = [];
    const batchKeys = new Map<string, Pending>();
    batch.forEach((p, i) => {
      const knownKey = keyIndex.get(p);
      // The entry that already holds this payload: under payload dedup, any; under key dedup,
      // only the key's own entry (a retry).
      let payloadIndex: number | undefined;
      if (byPayload) {
        const v = found[i];
        payloadIndex = v === undefined ? undefined : decodeIndex(v);
      } else if (knownKey !== undefined) {
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
      if (payloadIndex !== undefined) {
        existing.push([p, payloadIndex]);
        if (p.keyHash !== undefined && knownKey === undefined) {
          ops.push({
            type: "put",
            key: idempotencyKey(p.keyHash),
            value: encodeIndex(payloadIndex),
          });
        }
      } else {
        fresh.push(p);
        if (byPayload) freshPayloadKeys.push(lookups[i]!);
      }
    });

    const start = this.#tree.size;
    let stateValue: Uint8Array | undefined;
    const issued = this.#ids.issue(fresh.length);
    const leafHashes: Uint8Array[] = new Array(fresh.length);
    // A plain loop (no callback, no per-entry bookkeeping object): this runs for every entry.
    for (let i = 0; i < fresh.length; i++) {
      const p = fresh[i]!;
      const index = start + i;
      const { id, timestamp } = issued[i]!;
      // Version 2 (with the submitter) or 1 (without): src/core/entry.ts.
      const { leaf, leafHash } = encodeLeafAndHash({
        id,
        timestamp,
        submitter: p.submitter,
        payload: p.payload,
      });
      const at = encodeIndex(index);
      leafHashes[i] = leafHash;
      ops.push(
        { type: "put", key: entryKey(index), value: leaf },
        { type: "put", key: idKey(id), value: at },
        { type: "put", key: leafHashKey(leafHash), value: at },
      );
      if (byPayload) ops.push({ type: "put", key: freshPayloadKeys[i]!, value: at });
      if (p.keyHash !== undefined)
        ops.push({ type: "put", key: idempotencyKey(p.keyHash), value: at });
    }
    if (fresh.length > 0) {
      ops.push(...this.#tree.append(leafHashes));
      stateValue = encodeState({ size: this.#tree.size, compact: this.#tree.compactHashes() });
      ops.push({ type: "put", key: STATE_KEY, value: stateValue });
    }

    const size = this.#tree.size;
    const root = this.#tree.root();
    return {
      epoch,
      started,
      batch,
      ops,
      fresh,
      start,
      ids: issued,
      leafHashes,
      existing,
      size,
      root,
      stateValue,
    };
  }

  /**
   * Under key dedup: the payloads of the entries the batch's known keys point to (`found`: the
   * key lookups), read so that a retry (same payload) is told from a CONFLICT. Only retries
   * cost this read.
   */
  async #storedPayloads(
    found: readonly (Uint8Array | undefined)[],
  ): Promise<Map<number, Uint8Array | undefined>> {
    const indices = [...new Set(found.filter((v) => v !== undefined).map(decodeIndex))];
    const out = new Map<number, Uint8Array | undefined>();
    if (indices.length === 0) return out;
    const leaves = await this.#kv.getMany(indices.map(entryKey));
    // Checked against the tree like every read (these may be ahead of the published size: the
    // batch before this one was just written).
    const tree = this.#tree;
    for (let k = 0; k < indices.length; k++) {
      const leaf = leaves[k];
      await this.#verify.leaf(tree, indices[k]!, leaf);
      out.set(indices[k]!, decodeLeaf(leaf!).payload);
    }
    return out;
  }

  /** Steps 2 to 5: the synced write, the checkpoint, the answers. Runs under the lock, in order. */
  async #commit(b: PreparedBatch): Promise<void> {
    if (b.epoch !== this.#epoch) {
      // An earlier batch failed: this one was built on a tree that is being (or was) reloaded.
      const pending = [...b.fresh, ...b.existing.map(([p]) => p)];
      if (this.#failure !== undefined) for (const p of pending) p.reject(this.#failure);
      else this.#requeue(pending);
      return;
    }
    try {
      // The batch's checkpoint is signed now and stored in the batch's own atomic write: one
      // fsync per batch, not two. It leaves this process only after that write is durable and
      // read back; if the write fails, the signature is dropped unseen with the rest.
      const signed =
        b.fresh.length > 0 ? this.signer.sign(b.size, b.root, this.#nowSeconds()) : undefined;
      if (signed !== undefined) b.ops.push(checkpointPut(signed));
      if (b.ops.length > 0) await this.#kv.write(b.ops);
      if (signed !== undefined) {
        await this.#confirm(STATE_KEY, b.stateValue!, "the batch");
        this.#released(signed);
      }
    } catch (e) {
      this.#fail(e);
      const err = storageError(e, true);
      for (const p of b.fresh) p.reject(err);
      for (const [p] of b.existing) p.reject(err);
      return;
    }
    this.#count(b.fresh.length);
    this.#config.onBatch?.({
      entries: b.fresh.length,
      duplicates: b.existing.length,
      ms: performance.now() - b.started,
    });

    const signed = this.#latest;
    // `published`: a published checkpoint covers the batch (with a witness policy, one that met
    // its quorum). The receipt says `witnessed` only in that second case: a log without
    // witnesses publishes what it signs, and nobody else has seen it.
    const witnessing = this.#config.witnesses !== undefined;
    const answer = (published: boolean) => {
      const cp = published ? this.#published! : signed;
      const size = cp.checkpoint.size;
      for (let i = 0; i < b.fresh.length; i++) {
        const { id, timestamp } = b.ids[i]!;
        const p = b.fresh[i]!;
        p.resolve(
          new Receipt(
            b.start + i,
            id,
            timestamp,
            b.leafHashes[i]!,
            cp.note,
            size,
            false,
            this.#proofs,
            published && witnessing,
            p.submitter,
          ),
        );
      }
    };
    if (this.#config.witnesses === undefined) {
      // Answered on the next turn of the event loop, not now: the submitters' continuations
      // (receipts, HTTP responses) would otherwise run before #drain issues the next batch's
      // write. This way that write and its fsync are under way while they run.
      setImmediate(answer, true);
    } else {
      // Answer once witnessed (or after the bound), without holding up the next batch.
      void this.#waitPublished(signed.checkpoint.size, this.#config.receiptWaitMs ?? 3000).then(
        answer,
      );
    }
    for (const [p, index] of b.existing) {
      this.#receiptFor(index, p.payloadHash).then(
        (r) => p.resolve(r.asDuplicate()),
        (e) => p.reject(e),
      );
    }
  }

  /** Puts entries back at the front of the queue, in order. */
  #requeue(items: Pending[]): void {
    this.#queue.unshift(...items);
    for (const p of items) this.#queuedBytes += p.payload.length;
  }

  readonly #proofs = (index: number, size: number) => this.#tree.inclusionProof(index, size);

  #count(n: number): void {
    this.#sequencedCount += n;
    const now = this.#clock();
    this.#rate.count += n;
    if (now - this.#rate.since >= 1000) {
      this.#rate.perSecond = (this.#rate.count * 1000) / Math.max(1, now - this.#rate.since);
      this.#rate = { since: now, count: 0, perSecond: this.#rate.perSecond };
    }
  }

  #rejectQueue(error: unknown): void {
    const waiting = this.#queue.splice(0);
    this.#queuedBytes = 0;
    for (const p of waiting) p.reject(error);
  }

  async #resignIfIdle(): Promise<void> {
    if (this.#status !== "open" || this.#queue.length > 0 || this.#draining !== undefined) return;
    const age = this.#clock() / 1000 - this.#latest.time;
    if (age * 1000 < this.#opt.checkpointIntervalMs) return;
    await this.#withLock(async () => {
      if (this.#status !== "open") return;
      try {
        await this.#publish(this.#latest.checkpoint.size, this.#latest.checkpoint.rootHash);
      } catch (e) {
        this.#fail(e);
      }
    });
  }

  /**
   * Stops accepting entries, sequences everything queued, signs a final checkpoint, and stops
   * the timers. The caller closes the storage afterwards.
   */
  async close(): Promise<void> {
    if (this.#status === "closed" || this.#status === "closing") return;
    const wasOpen = this.#status === "open";
    this.#status = "closing";
    this.#startCheck?.cancel();
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer as ReturnType<typeof setTimeout>);
      clearImmediate(this.#flushTimer as ReturnType<typeof setImmediate>);
      this.#flushTimer = undefined;
    }
    clearInterval(this.#resignTimer);
    await this.#draining;
    await this.#drain();
    if (wasOpen) {
      const { size, rootHash } = this.#latest.checkpoint;
      await this.#withLock(() => this.#publish(size, rootHash)).catch(() => undefined);
    }
    this.#rejectQueue(new VellumError("UNAVAILABLE", "the log is closed"));
    this.#status = "closed";
  }

  // ---------------------------------------------------------------------------------------
  // Reads: only what a published checkpoint covers.

  /** The latest checkpoint the log signed (and stored). */
  get checkpoint(): SignedCheckpoint {
    return this.#latest;
  }

  /**
   * The latest published checkpoint: with witnesses, the latest that met the quorum (undefined
   * until one does); without, the latest signed.
   */
  get published(): SignedCheckpoint | undefined {
    return this.#published;
  }

  witnessStatus() {
    return this.#config.witnesses?.status() ?? [];
  }

  get size(): number {
    return this.#latest.checkpoint.size;
  }

  get status(): Status {
    return this.#status;
  }

  /** With witnesses: the start-up rollback check (what it waits for, or why it failed). */
  get startCheck(): RollbackCheckStatus | undefined {
    return this.#startCheck?.status();
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  get sequenced(): number {
    return this.#sequencedCount;
  }

  get settings(): Readonly<typeof DEFAULTS> {
    return this.#opt;
  }

  /** The dedup rule this log follows (src/log/dedup.ts). */
  get dedup(): DedupMode {
    return this.#dedup;
  }

  #checkPublished(size: number, what = "tree size"): void {
    checkSize(size, what);
    check(
      size <= this.size,
      "OUT_OF_RANGE",
      `${what} ${size} is beyond the latest checkpoint's size ${this.size}`,
    );
  }

  #checkIndex(index: number): void {
    checkSize(index, "index");
    check(index < this.size, "NOT_FOUND", `no entry at index ${index} (log size ${this.size})`);
  }

  /** The signed checkpoint published for `size` (its latest signature). */
  async checkpointAt(size: number): Promise<string> {
    this.#checkPublished(size);
    const note = await this.#kv.get(checkpointKey(size));
    if (note === undefined) {
      throw new VellumError("NOT_FOUND", `no checkpoint was published at size ${size}`);
    }
    return new TextDecoder().decode(note);
  }

  async entry(index: number): Promise<LogEntry> {
    const { leaf, leafHash } = await this.#leaf(index);
    return toEntry(index, leaf, leafHash);
  }

  /** The stored leaf bytes of a published entry and their leaf hash, verified against the tree. */
  async #leaf(index: number): Promise<{ leaf: Uint8Array; leafHash: Uint8Array }> {
    this.#checkIndex(index);
    // The tree of the moment of the read: a reload may replace it, never shrink what it publishes.
    const tree = this.#tree;
    const leaf = await this.#kv.get(entryKey(index));
    const leafHash = await this.#verify.leaf(tree, index, leaf);
    return { leaf: leaf!, leafHash };
  }

  async #lookup(key: Uint8Array, what: string): Promise<number> {
    const v = await this.#kv.get(key);
    const index = v === undefined ? undefined : decodeIndex(v);
    if (index === undefined || index >= this.size) {
      throw new VellumError("NOT_FOUND", `no entry with this ${what}`);
    }
    return index;
  }

  // A lookup index that points at another entry than the one it names is damaged storage too:
  // serving that entry would answer the question with other bytes.

  async entryById(id: Uint8Array): Promise<LogEntry> {
    const entry = await this.entry(await this.#lookup(idKey(id), "id"));
    const asked = formatUuid(id);
    if (entry.id !== asked) {
      throw this.#verify.fail(
        "lookup",
        entry.index,
        `the id index maps ${asked} to entry ${entry.index}, whose id is ${entry.id}`,
      );
    }
    return entry;
  }

  async entryByLeafHash(leafHash: Uint8Array): Promise<LogEntry> {
    const entry = await this.entry(await this.#lookup(leafHashKey(leafHash), "leaf hash"));
    if (!bytesEqual(entry.leafHash, leafHash)) throw this.#wrongLeafHash(entry.index);
    return entry;
  }

  async indexOfLeafHash(leafHash: Uint8Array): Promise<number> {
    const tree = this.#tree;
    const index = await this.#lookup(leafHashKey(leafHash), "leaf hash");
    const [stored] = await tree.leafHashes(index, index + 1);
    if (stored === undefined || !bytesEqual(stored, leafHash)) throw this.#wrongLeafHash(index);
    return index;
  }

  #wrongLeafHash(index: number): VellumError {
    return this.#verify.fail(
      "lookup",
      index,
      `the leaf-hash index points at entry ${index}, whose leaf hash in the tree is another`,
    );
  }

  /** Entries [start, start+limit) that are published, in order. */
  async entries(start: number, limit: number): Promise<LogEntry[]> {
    checkSize(start, "start");
    const end = Math.min(this.size, start + Math.max(0, limit));
    if (start >= end) return [];
    const tree = this.#tree;
    const rows = await this.#kv.range(entryRange(start, end));
    const leaves = await this.#verify.rows(tree, start, end, rows);
    return leaves.map((l) => toEntry(l.index, l.leaf, l.leafHash));
  }

  /**
   * The multiproof (src/core/multiproof.ts) of leaves `indices` (strictly increasing) in the
   * tree of `size`: what a batch's submitter needs, beyond its own leaf hashes, to rebuild every
   * inclusion proof of the batch.
   */
  async multiproof(indices: readonly number[], size: number): Promise<Uint8Array[]> {
    this.#checkPublished(size);
    return this.#tree.multiproof(indices, size);
  }

  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    this.#checkPublished(size);
    check(index < size, "OUT_OF_RANGE", `index ${index} is not below tree size ${size}`);
    return this.#tree.inclusionProof(index, size);
  }

  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    this.#checkPublished(size2, "second tree size");
    check(size1 <= size2, "OUT_OF_RANGE", `first size ${size1} exceeds second size ${size2}`);
    return this.#tree.consistencyProof(size1, size2);
  }

  /**
   * The receipt of entry `index` against the latest checkpoint. `payloadHash`: the payload a
   * duplicate submission was matched to this entry by (the dedup index), checked against it.
   */
  async #receiptFor(index: number, payloadHash?: Uint8Array): Promise<Receipt> {
    const published = this.#published;
    const covered = published !== undefined && published.checkpoint.size > index;
    const { checkpoint, note } = covered ? published : this.#latest;
    // Witnessed only when a witness policy was met, never merely because a checkpoint is public.
    const witnessed = covered && this.#config.witnesses !== undefined;
    // Decoded once: the receipt needs the raw id, not entry()'s text form.
    const { leaf, leafHash } = await this.#leaf(index);
    const { id, timestamp, submitter, payload } = decodeLeaf(leaf);
    if (payloadHash !== undefined && !bytesEqual(sha256(payload), payloadHash)) {
      throw this.#verify.fail(
        "lookup",
        index,
        `the payload index matched a submission to entry ${index}, which holds another payload`,
      );
    }
    const size = checkpoint.size;
    return new Receipt(
      index,
      id,
      timestamp,
      leafHash,
      note,
      size,
      false,
      this.#proofs,
      witnessed,
      submitter,
    );
  }

  async receipt(index: number): Promise<Receipt> {
    this.#checkIndex(index);
    return this.#receiptFor(index);
  }

  /** A C2SP hash tile, if the latest checkpoint's tree serves it. */
  async hashTile(level: number, index: number, width: number): Promise<Uint8Array> {
    const nodes = Math.floor(this.size / TILE_WIDTH ** level);
    if (index * TILE_WIDTH + width > nodes) {
      throw new VellumError(
        "NOT_FOUND",
        `tile ${level}/${index} of width ${width} is not published`,
      );
    }
    const tile = await this.#tree.hashTile(level, index, width);
    if (tile === undefined) throw new VellumError("INTERNAL", `tile ${level}/${index} missing`);
    return tile;
  }

  /** A C2SP entry bundle (leaves index·256 … index·256+width−1), if published. */
  async entryBundle(index: number, width: number): Promise<Uint8Array> {
    const first = index * TILE_WIDTH;
    if (first + width > this.size) {
      throw new VellumError(
        "NOT_FOUND",
        `entry bundle ${index} of width ${width} is not published`,
      );
    }
    if (width === TILE_WIDTH) {
      const cached = this.#bundles.get(index);
      if (cached !== undefined) return cached;
    }
    const tree = this.#tree;
    const rows = await this.#kv.range(entryRange(first, first + width));
    // Verified before it is cached, so a cache hit needs no check.
    const leaves = await this.#verify.rows(tree, first, first + width, rows);
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

function storageError(e: unknown, mayHaveLanded: boolean): VellumError {
  const why = e instanceof Error ? e.message : String(e);
  return new VellumError(
    "STORAGE_FAILURE",
    mayHaveLanded
      ? `storage failed while writing this entry (${why}); it may or may not be in the log: resubmit it with the same idempotency key, which returns the original if it landed`
      : `storage failed before this entry was written (${why}); it is not in the log: resubmit it`,
    { cause: e },
  );
}
