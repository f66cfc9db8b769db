/**
 * @module
 * Start-up and recovery: loading the tree from storage behind guards that refuse
 * (STATE_MISMATCH), never repair, whenever storage, the key, the clock or checkpoints remembered
 * outside storage disagree; and fail-stop after a failed write (spec/storage.md, "Storage
 * failures"): acknowledge nothing more, refuse what is queued, reopen the store and reload the
 * tree — checked against the last checkpoint released — with back-off, and stop for good when
 * what storage holds contradicts what was released.
 */
import { nextBackoff } from "../core/backoff.js";
import { decodeLeaf } from "../core/entry.js";
import { isVellumError, VellumError } from "../core/errors.js";
import { describeStorageFailure, storageFailure, storageFailureClass } from "../storage/failure.js";
import type { StoredLog, TreeState } from "../storage/log-store.js";
import type { LogContext } from "./context.js";
import { decideDedup } from "./dedup.js";
import { IdGenerator } from "./ids.js";
import type { Publisher } from "./publisher.js";
import type { SubmissionQueue } from "./queue.js";
import type { SignedCheckpoint } from "./signer.js";
import { Tree } from "./tree.js";

export class Recovery {
  readonly #ctx: LogContext;
  readonly #publisher: Publisher;
  readonly #queue: SubmissionQueue;
  readonly #resume: () => void;
  #recovering: Promise<void> | undefined;

  /** `resume` restarts sequencing once the log acknowledges again. */
  constructor(ctx: LogContext, publisher: Publisher, queue: SubmissionQueue, resume: () => void) {
    this.#ctx = ctx;
    this.#publisher = publisher;
    this.#queue = queue;
    this.#resume = resume;
  }

  /**
   * Decides the dedup rule from the stored setting and the requested one (dedup.ts). A new log
   * stores it with its first write (load); a change of an existing log's rule is stored here.
   */
  /** What storage holds; says so when loading took an unfinished batch back out. */
  async #loadStored(): Promise<StoredLog> {
    const stored = await this.#ctx.store.load();
    if (stored.undone !== undefined) {
      this.#ctx.config.onBatchUndone?.(stored.undone.from, stored.undone.to);
    }
    return stored;
  }

  async openDedup(): Promise<void> {
    const ctx = this.#ctx;
    const stored = await this.#loadStored();
    const decision = decideDedup(stored.dedup, stored.state !== undefined, ctx.config.dedup);
    ctx.dedup = decision.mode;
    if (decision.changed !== undefined) {
      await ctx.writes.run(() => ctx.store.setDedup(decision.mode));
      ctx.config.onDedupChange?.(decision.changed);
    }
  }

  /**
   * Loads the tree and latest checkpoint from storage and refuses (STATE_MISMATCH) when they,
   * the key, the clock or the externally remembered checkpoints disagree. Never repairs.
   * `signUncovered` false leaves entries stored beyond the latest checkpoint unsigned (open()
   * signs them once the witnesses' rollback check passed). The caller holds the write lock.
   */
  async load(signUncovered = true): Promise<void> {
    const ctx = this.#ctx;
    const stored = await this.#loadStored();
    if (stored.state === undefined) {
      await this.#create(stored.holdsData || stored.latestCheckpoint !== undefined);
      return;
    }
    const state = stored.state;
    if (stored.latestCheckpoint === undefined) {
      throw new VellumError("STATE_MISMATCH", "storage holds a tree but no signed checkpoint");
    }
    const latest = ctx.signer.open(stored.latestCheckpoint);
    const tree = await this.#loadTree(state);
    await checkCovers(tree, latest, "the latest stored checkpoint");
    if (ctx.latest !== undefined) {
      // A reload after a failure: storage must still hold everything this process released.
      await checkCovers(tree, ctx.latest, "the last checkpoint this log released");
    }
    for (const { where, note } of this.#remembered()) {
      let remembered: SignedCheckpoint;
      try {
        remembered = ctx.signer.open(note);
      } catch (e) {
        throw new VellumError(
          "STATE_MISMATCH",
          `${where} is not a checkpoint of this log: ${(e as Error).message}`,
        );
      }
      // The tree must still hold what was published (a rollback loses entries); a checkpoint
      // record that was lost while its entries were stored is simply signed again below.
      await checkCovers(tree, remembered, `the last published checkpoint (${where})`);
    }
    this.#checkClock(latest);
    let lastId: Uint8Array | undefined;
    if (state.size > 0) {
      const [last] = await ctx.store.leaves([state.size - 1]);
      if (last === undefined) {
        throw new VellumError("STATE_MISMATCH", `entry ${state.size - 1} is missing from storage`);
      }
      lastId = decodeLeaf(last).id;
    }
    ctx.tree = tree;
    ctx.epoch++;
    // Ids and timestamps continue from the last entry's, never below it (ids.ts).
    ctx.ids = new IdGenerator(ctx.clock, lastId);
    ctx.latest = latest;
    // Entries written durably but never covered by a checkpoint (a crash between commit and release).
    if (signUncovered && state.size > latest.checkpoint.size) {
      await this.#publisher.publish(tree.size, tree.root());
    }
  }

  /** A new log: its state and its first (empty) checkpoint in one write. */
  async #create(holdsData: boolean): Promise<void> {
    const ctx = this.#ctx;
    if (holdsData) {
      throw new VellumError("STATE_MISMATCH", "storage holds log data but no tree state");
    }
    const remembered = this.#remembered();
    if (remembered.length > 0) {
      throw new VellumError(
        "STATE_MISMATCH",
        `storage is empty but this log has published checkpoints before (${remembered.map((e) => e.where).join(", ")}): the data is missing`,
      );
    }
    ctx.tree = await this.#loadTree({ size: 0, compact: [] });
    ctx.ids = new IdGenerator(ctx.clock);
    const signed = ctx.signer.sign(0, ctx.tree.root(), ctx.nowSeconds());
    await ctx.store.create(ctx.dedup, signed.note);
    ctx.latest = signed;
    ctx.config.onCheckpoint?.(signed);
  }

  #loadTree(state: TreeState): Promise<Tree> {
    const store = this.#ctx.store;
    const cachedTiles = this.#ctx.config.cachedTiles;
    return Tree.load(
      (level, index) => store.stratum(level, index),
      state.size,
      state.compact,
      cachedTiles === undefined ? {} : { cachedTiles },
    );
  }

  /** Checkpoints remembered outside storage (DATA/checkpoint, the state mirror). */
  #remembered(): { where: string; note: string }[] {
    const config = this.#ctx.config;
    return [
      ...(config.lastPublished === undefined
        ? []
        : [{ where: "DATA/checkpoint", note: config.lastPublished }]),
      ...(config.remembered ?? []),
    ];
  }

  #checkClock(latest: SignedCheckpoint): void {
    const nowSeconds = Math.floor(this.#ctx.clock() / 1000);
    if (nowSeconds < latest.time && this.#ctx.config.allowClockBehind !== true) {
      throw new VellumError(
        "STATE_MISMATCH",
        `the clock (${nowSeconds}) is ${latest.time - nowSeconds} s behind the last checkpoint's time (${latest.time}); fix the clock, or start with --allow-clock-behind (timestamps then stay at the last issued until the clock catches up)`,
      );
    }
  }

  /**
   * Fail-stop after a failed write (or a failed rollback marker: `recoverFirst`): acknowledge
   * nothing more, refuse what is queued, and recover in the background. Idempotent while failed.
   */
  fail(cause: unknown, recoverFirst?: () => Promise<void>): void {
    const ctx = this.#ctx;
    if (ctx.status === "closed") return;
    const first = ctx.failure === undefined;
    const why = describeStorageFailure(cause);
    const detail = cause instanceof Error ? cause.message : String(cause);
    ctx.failure ??= new VellumError(
      "STORAGE_FAILURE",
      `${why}: the log stopped acknowledging after a storage failure and is recovering; nothing more is acknowledged until it has (${detail}). Retry shortly: an entry resubmitted with the same idempotency key that did land is answered as a duplicate`,
      { cause },
    );
    ctx.epoch++; // batches prepared on the failed tree are refused, not committed
    if (ctx.status === "open" || ctx.status === "recovering") ctx.status = "failed";
    this.#queue.rejectAll(ctx.failure);
    if (first) {
      ctx.config.onFailure?.(storageFailure("the log stopped acknowledging", cause), {
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
   * Retries `recoverFirst`, the store's recovery (a reopen) and a reload of the tree from
   * storage, checked against the last checkpoint released, with doubling pauses, until both
   * succeed or the log closes. What storage holds contradicting what was released
   * (STATE_MISMATCH) is final: the log stays failed, since only an operator can tell which is
   * right.
   */
  async #recoverLoop(recoverFirst: (() => Promise<void>) | undefined): Promise<void> {
    const ctx = this.#ctx;
    const started = performance.now();
    const min = ctx.config.recoveryMinMs ?? 100;
    const max = ctx.config.recoveryMaxMs ?? 10_000;
    for (let attempt = 1, pause = min; ; attempt++, pause = nextBackoff(pause, max)) {
      await new Promise((r) => setTimeout(r, pause).unref());
      if (ctx.status !== "failed") return;
      try {
        await recoverFirst?.();
        await ctx.store.recover();
        await ctx.writes.run(() => this.load());
        if (ctx.status !== "failed") return;
        ctx.failure = undefined;
        ctx.status = "open";
        ctx.config.onRecovered?.(performance.now() - started);
        this.#publisher.afterSigning();
        if (this.#queue.length > 0) this.#resume();
        return;
      } catch (e) {
        const final = isVellumError(e, "STATE_MISMATCH");
        const err = isVellumError(e) ? e : storageFailure("recovery", e);
        ctx.config.onFailure?.(err, {
          kind: final ? "final" : "retry",
          attempt,
          class: storageFailureClass(e),
        });
        if (final) {
          ctx.failure = new VellumError(
            "UNAVAILABLE",
            `the log stopped after a storage failure, and what storage holds now contradicts what it published (${err.message}); it must be restarted by an operator (see spec/storage.md, "Storage failures")`,
            { cause: e },
          );
          return;
        }
      }
    }
  }
}

/** Refuses a tree that does not contain `cp` (too small, or another root at that size). */
async function checkCovers(tree: Tree, cp: SignedCheckpoint, what: string): Promise<void> {
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
