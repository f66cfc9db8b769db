/**
 * @module
 * The state one log's parts share (queue, sequencer, publisher, start-up and recovery, reader):
 * its configuration and store, the tree and id generator of the moment, the latest checkpoint,
 * the status, and the one lock every write to the store goes through.
 *
 * Invariants kept here:
 *   - `writes` serialises every write to the store: batch commits, checkpoint writes (re-signs,
 *     cosigned notes, the final one at close) and reloads after a failure. Nothing writes outside
 *     it, so a reload never sees half of a batch and two writers never race for a checkpoint.
 *   - `epoch` changes whenever the tree is (re)loaded or the log fails; work prepared under one
 *     epoch is never committed under another.
 */
import type { VellumError } from "../core/errors.js";
import { Mutex } from "../core/mutex.js";
import type { LogStore } from "../storage/log-store.js";
import { DEFAULTS, type LogConfig, type Status } from "./config.js";
import type { DedupMode } from "./dedup.js";
import type { IdGenerator } from "./ids.js";
import { ReadVerifier } from "./integrity.js";
import { CheckpointSigner, type SignedCheckpoint } from "./signer.js";
import type { Tree } from "./tree.js";

export type Settings = typeof DEFAULTS;

export class LogContext {
  readonly config: LogConfig;
  readonly store: LogStore;
  readonly signer: CheckpointSigner;
  readonly clock: () => number;
  readonly settings: Settings;
  /** Checks every leaf a read returns against the tree before it is served. */
  readonly verify: ReadVerifier;
  /** Serialises every write to the store (see the invariants above). */
  readonly writes = new Mutex();

  status: Status = "recovering";
  epoch = 0;
  /** Why the log does not acknowledge (status "failed"): what submitters are told. */
  failure: VellumError | undefined;
  /** The dedup rule (decided at open). */
  dedup: DedupMode = "key";
  tree!: Tree;
  ids!: IdGenerator;
  /** The latest checkpoint the log signed and stored. */
  latest!: SignedCheckpoint;
  /**
   * Fail-stop after a failed write (recovery.ts): acknowledge nothing more, recover in the
   * background. Wired by the façade once every part exists.
   */
  fail: (cause: unknown) => void = () => {
    throw new Error("LogContext.fail called before the log was assembled");
  };

  constructor(config: LogConfig, store: LogStore) {
    this.config = config;
    this.store = store;
    this.signer = new CheckpointSigner(config.origin, config.seed);
    this.verify = new ReadVerifier(config.onIntegrityFailure);
    this.clock = config.clock ?? Date.now;
    this.settings = {
      batchMaxEntries: config.batchMaxEntries ?? DEFAULTS.batchMaxEntries,
      batchMaxAgeMs: config.batchMaxAgeMs ?? DEFAULTS.batchMaxAgeMs,
      maxQueueEntries: config.maxQueueEntries ?? DEFAULTS.maxQueueEntries,
      maxQueueBytes: config.maxQueueBytes ?? DEFAULTS.maxQueueBytes,
      checkpointIntervalMs: config.checkpointIntervalMs ?? DEFAULTS.checkpointIntervalMs,
    };
  }

  /** Seconds for a new checkpoint: never before the latest one's, even if the clock goes back. */
  nowSeconds(): number {
    const now = Math.floor(this.clock() / 1000);
    return this.latest === undefined ? now : Math.max(now, this.latest.time);
  }

  get witnessed(): boolean {
    return this.config.witnesses !== undefined;
  }
}
