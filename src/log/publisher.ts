/**
 * @module
 * Publication: which signed checkpoint the log shows the world. Without witnesses, every
 * checkpoint the log signs and stores is published at once; with a witness policy, only one
 * whose cosignatures meet the quorum (the witness loop gathers them and stores the cosigned note
 * in place of the log-signed one, by compare-and-swap). Also the idle re-signing that keeps an
 * idle log's checkpoint fresh.
 *
 * Invariants: a checkpoint is released (latest, handed to witnesses, answered in receipts) only
 * after it is durably stored; every store write here goes through the log's one write lock.
 */
import { verifyQuorum } from "../core/policy.js";
import type { LogContext } from "./context.js";
import type { SignedCheckpoint } from "./signer.js";

export class Publisher {
  readonly #ctx: LogContext;
  /** The latest checkpoint that met the witness quorum (all of latest without witnesses). */
  #published: SignedCheckpoint | undefined;
  /** The log-signed note #published was cosigned from. */
  #witnessedFrom: string | undefined;
  #witnessing: Promise<void> | undefined;
  readonly #waiters = new Set<() => void>();
  #resignTimer: ReturnType<typeof setInterval> | undefined;

  constructor(ctx: LogContext) {
    this.#ctx = ctx;
  }

  get published(): SignedCheckpoint | undefined {
    return this.#published;
  }

  /**
   * Signs and durably stores a checkpoint for the tree of `size` with `root`, which must be
   * durably stored already. The caller holds the write lock.
   */
  async publish(size: number, root: Uint8Array): Promise<void> {
    const ctx = this.#ctx;
    const signed = ctx.signer.sign(size, root, ctx.nowSeconds());
    await ctx.store.putCheckpoint(size, signed.note);
    // Not read back, unlike a batch: a checkpoint lost after this point is re-signed from the
    // stored tree on restart, and its signed body (hence every receipt's log signature) is the same.
    this.released(signed);
  }

  /** `signed` is durably stored: it becomes the latest checkpoint (and goes to the witnesses). */
  released(signed: SignedCheckpoint): void {
    this.#ctx.latest = signed;
    this.#ctx.config.onCheckpoint?.(signed);
    this.afterSigning();
  }

  /** Publishes the latest checkpoint now, or starts the witness loop for it. */
  afterSigning(): void {
    if (!this.#ctx.witnessed) {
      this.#setPublished(this.#ctx.latest);
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
  async findPublished(): Promise<void> {
    const ctx = this.#ctx;
    const collector = ctx.config.witnesses;
    if (collector === undefined) {
      this.#setPublished(ctx.latest);
      return;
    }
    for (const note of await ctx.store.recentCheckpoints(64)) {
      try {
        verifyQuorum(collector.policy, note);
        this.#setPublished(ctx.signer.open(note));
        break;
      } catch {
        // not witnessed (or not by enough of this policy's witnesses): look further back
      }
    }
    this.afterSigning();
  }

  #setPublished(cp: SignedCheckpoint): void {
    this.#published = cp;
    for (const wake of this.#waiters) wake();
  }

  /** Cosigns the newest log-signed checkpoint until one meets the quorum (retrying with a pause). */
  async #witnessLoop(): Promise<void> {
    const ctx = this.#ctx;
    const collector = ctx.config.witnesses!;
    const retryMs = ctx.config.witnessRetryMs ?? 1000;
    while (ctx.status !== "closed" && ctx.latest.note !== this.#witnessedFrom) {
      const basis = ctx.latest;
      const result = await collector.cosign(basis.note, basis.checkpoint.size, (from, to) =>
        ctx.tree.consistencyProof(from, to),
      );
      if (!result.quorum) {
        await new Promise((r) => setTimeout(r, retryMs).unref());
        continue;
      }
      let stored: boolean;
      try {
        // Only in place of the note it was cosigned from: if the size was re-signed meanwhile,
        // the newer note is witnessed on the next round instead.
        stored = await ctx.writes.run(() =>
          ctx.store.putCheckpoint(basis.checkpoint.size, result.note, basis.note),
        );
      } catch (e) {
        // The log-signed note stays stored; witnessing goes on once storage is recovered.
        ctx.fail(e);
        return;
      }
      if (!stored) continue;
      this.#witnessedFrom = basis.note;
      this.#setPublished({ ...basis, note: result.note });
    }
  }

  /** Resolves true once a checkpoint of at least `size` is published, false after `ms`. */
  waitPublished(size: number, ms: number): Promise<boolean> {
    if ((this.#published?.checkpoint.size ?? -1) >= size) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve(ok);
      };
      const wake = () => {
        if ((this.#published?.checkpoint.size ?? -1) >= size) done(true);
      };
      const timer = setTimeout(() => done(false), ms);
      this.#waiters.add(wake);
    });
  }

  /** Re-signs the checkpoint every interval while `idle()` says nothing else is being signed. */
  startResigning(idle: () => boolean): void {
    const every = this.#ctx.settings.checkpointIntervalMs;
    if (every <= 0) return;
    this.#resignTimer = setInterval(() => {
      if (idle()) void this.#resignIfDue();
    }, every);
    this.#resignTimer.unref();
  }

  stopResigning(): void {
    clearInterval(this.#resignTimer);
  }

  async #resignIfDue(): Promise<void> {
    const ctx = this.#ctx;
    const age = ctx.clock() / 1000 - ctx.latest.time;
    if (age * 1000 < ctx.settings.checkpointIntervalMs) return;
    await ctx.writes.run(async () => {
      if (ctx.status !== "open") return;
      try {
        await this.publish(ctx.latest.checkpoint.size, ctx.latest.checkpoint.rootHash);
      } catch (e) {
        ctx.fail(e);
      }
    });
  }
}
