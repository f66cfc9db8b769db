/**
 * @module
 * What a log is configured with and what it answers: the public types of the Log façade.
 */
import type { VellumError } from "../core/errors.js";
import type { StorageFailureClass } from "../storage/failure.js";
import type { LogStore } from "../storage/log-store.js";
import type { KeyValueStore } from "../storage/types.js";
import type { DedupMode } from "./dedup.js";
import type { IntegrityFailure } from "./integrity.js";
import type { Receipt } from "./receipt.js";
import type { RollbackCheckStatus } from "./rollback-check.js";
import type { SignedCheckpoint } from "./signer.js";
import type { WitnessCollector } from "./witnessing.js";

export interface LogConfig {
  readonly origin: string;
  /** The 32-byte Ed25519 seed of the log's key. */
  readonly seed: Uint8Array;
  /**
   * Where the log keeps its data (src/storage/log-store.ts). `kv` is the shorthand for the
   * embedded layout over one KeyValueStore namespace (a KvLogStore over it).
   */
  readonly store?: LogStore;
  /** This log's own namespace, when `store` is not given. */
  readonly kv?: KeyValueStore;
  /**
   * With `kv`: this log's namespace in the entries database, where a log created with it keeps
   * its leaves (layout 3, kv-log-layout.ts). Logs created without one keep them in `kv`.
   */
  readonly entries?: KeyValueStore;
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
  /**
   * Called when loading took an unfinished batch back out of storage (its own write durable, its
   * leaves not: a crash or failure between them; nothing of it was acknowledged): the tree size
   * it had stored and the size the log resumes from.
   */
  readonly onBatchUndone?: (from: number, to: number) => void;
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

/** `checking`: opened with witnesses, signing nothing until they confirm (rollback-check.ts). */
export type Status = "checking" | "open" | "recovering" | "failed" | "closing" | "closed";
