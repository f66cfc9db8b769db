/**
 * @module
 * The log's queue: submissions waiting to be sequenced, with back-pressure (a bound on entries
 * and on bytes, refused with OVERLOADED and a Retry-After) and in-flight dedup — a submission
 * that matches one already queued or being sequenced, by the log's dedup rule (dedup.ts), follows
 * that one instead of being queued twice; storage dedup (sequencer.ts) applies the same rule to
 * what has landed.
 *
 * Invariant: every accepted submission is settled exactly once — answered with a receipt, or
 * refused — by the sequencer, by a refusal of the whole queue (failure, close), or through the
 * submission it follows.
 */
import { bytesEqual } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { isValidSubmitter, MAX_PAYLOAD_SIZE, MAX_SUBMITTER_SIZE } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import { base64 } from "../platform/base64.js";
import type { Submission, SubmitOptions, SubmitOutcome } from "./config.js";
import type { LogContext } from "./context.js";
import type { Receipt } from "./receipt.js";

/**
 * How a submitter is answered: `slot` is its position in a submitMany() or submitEach() call (0
 * for submit()).
 */
type Answer = (r: Receipt, slot: number) => void;
type Refusal = (e: unknown, slot: number) => void;

/** A Map key for a hash (native base64: this runs for every submission). */
const hex = base64;

/**
 * A queued submission. A class with methods rather than an object of closures: this is made for
 * every entry, and three closures per entry were a measurable share of the submit path's garbage.
 */
export class Pending {
  readonly payload: Uint8Array;
  /** Under payload dedup only. */
  readonly payloadHash: Uint8Array | undefined;
  readonly keyHash: Uint8Array | undefined;
  readonly submitter: string | undefined;
  /**
   * Its keys in the queue's in-flight maps, removed once it settles: `dedupId` in `inflight` (its
   * payload hash under payload dedup, its key hash under key dedup, none for an unkeyed entry
   * under key dedup), `keyId` in `inflightKeys` (under payload dedup, when it has a key).
   */
  readonly dedupId: string | undefined;
  readonly keyId: string | undefined;
  readonly #queue: SubmissionQueue;
  readonly #ok: Answer;
  readonly #fail: Refusal;
  readonly #slot: number;
  /** Others waiting on this submission: identical payloads, or the same key in flight. */
  followers?: ((receipt: Receipt | undefined, error: unknown) => void)[];

  constructor(
    queue: SubmissionQueue,
    payload: Uint8Array,
    payloadHash: Uint8Array | undefined,
    keyHash: Uint8Array | undefined,
    submitter: string | undefined,
    dedupId: string | undefined,
    keyId: string | undefined,
    ok: Answer,
    fail: Refusal,
    slot: number,
  ) {
    this.#queue = queue;
    this.payload = payload;
    this.payloadHash = payloadHash;
    this.keyHash = keyHash;
    this.submitter = submitter;
    this.dedupId = dedupId;
    this.keyId = keyId;
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
    this.#queue.forget(this);
    if (r === undefined) this.#fail(e, this.#slot);
    else this.#ok(r, this.#slot);
    for (const f of this.followers ?? []) f(r, e);
  }
}

/** A follower that answers with the followed submission's receipt, as a duplicate. */
function duplicateOf(ok: Answer, fail: Refusal, slot: number) {
  return (r: Receipt | undefined, e: unknown) =>
    r === undefined ? fail(e, slot) : ok(r.asDuplicate(), slot);
}

/** Registers `f` to run when `p` settles. */
export function follow(
  p: Pending,
  f: (receipt: Receipt | undefined, error: unknown) => void,
): void {
  if (p.followers === undefined) p.followers = [];
  p.followers.push(f);
}

export class SubmissionQueue {
  readonly #ctx: LogContext;
  /** Throws why the log takes no submission now (status), or returns. */
  readonly #checkAccepting: () => void;
  /** Tells the sequencer there is work. */
  readonly #schedule: () => void;
  readonly #waiting: Pending[] = [];
  #bytes = 0;
  /**
   * Submissions queued or being sequenced, for dedup before storage: by payload hash under
   * payload dedup (and their keys in #inflightKeys), by key hash under key dedup.
   */
  readonly #inflight = new Map<string, Pending>();
  readonly #inflightKeys = new Map<string, string>();
  #sequenced = 0;
  #rate = { since: 0, count: 0, perSecond: 0 };

  constructor(ctx: LogContext, checkAccepting: () => void, schedule: () => void) {
    this.#ctx = ctx;
    this.#checkAccepting = checkAccepting;
    this.#schedule = schedule;
  }

  get length(): number {
    return this.#waiting.length;
  }

  /** Entries sequenced since start (new entries only). */
  get sequenced(): number {
    return this.#sequenced;
  }

  /** Queues one entry; resolves once it is durably in the log under a signed checkpoint. */
  submit(payload: Uint8Array, options: SubmitOptions = {}): Promise<Receipt> {
    return new Promise((resolve, reject) => this.#enqueue(payload, options, resolve, reject));
  }

  /**
   * Queues many entries at once: one promise for all, resolving to their receipts in order, or
   * rejecting with the first refusal (the others may be stored: resubmitting with the same keys
   * is safe, duplicates return the originals). Cheaper per entry than submit().
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
   * rejecting) to each one's receipt or refusal, in order.
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

  /** Takes up to `n` submissions off the front, for a batch. */
  take(n: number): Pending[] {
    const batch = this.#waiting.splice(0, n);
    for (const p of batch) this.#bytes -= p.payload.length;
    return batch;
  }

  /** Puts submissions back at the front, in order (their batch was prepared on a stale tree). */
  requeue(items: readonly Pending[]): void {
    this.#waiting.unshift(...items);
    for (const p of items) this.#bytes += p.payload.length;
  }

  /** Refuses everything waiting. */
  rejectAll(error: unknown): void {
    const waiting = this.#waiting.splice(0);
    this.#bytes = 0;
    for (const p of waiting) p.reject(error);
  }

  /** Counts newly sequenced entries (for the Retry-After estimate and metrics). */
  count(n: number): void {
    this.#sequenced += n;
    const now = this.#ctx.clock();
    this.#rate.count += n;
    if (now - this.#rate.since >= 1000) {
      this.#rate.perSecond = (this.#rate.count * 1000) / Math.max(1, now - this.#rate.since);
      this.#rate = { since: now, count: 0, perSecond: this.#rate.perSecond };
    }
  }

  /** Called by a settling submission: it no longer blocks its key or payload. */
  forget(p: Pending): void {
    if (p.dedupId !== undefined) this.#inflight.delete(p.dedupId);
    if (p.keyId !== undefined) this.#inflightKeys.delete(p.keyId);
  }

  #retryAfterMs(): number {
    const rate = Math.max(this.#rate.perSecond, 1000);
    return Math.min(5000, Math.max(50, Math.ceil((this.#waiting.length / rate) * 1000)));
  }

  /** Refuses a submission the log cannot take, before anything is hashed. */
  #admit(payload: Uint8Array, options: SubmitOptions): void {
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
    const { maxQueueEntries, maxQueueBytes } = this.#ctx.settings;
    if (this.#waiting.length >= maxQueueEntries || this.#bytes + payload.length > maxQueueBytes) {
      throw new VellumError(
        "OVERLOADED",
        `the log's queue is full (${this.#waiting.length} entries waiting); try again shortly`,
        { retryAfterMs: this.#retryAfterMs() },
      );
    }
  }

  #enqueue(payload: Uint8Array, options: SubmitOptions, ok: Answer, fail: Refusal, slot = 0): void {
    try {
      this.#admit(payload, options);
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
    if (this.#ctx.dedup === "payload") {
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
        follow(same, duplicateOf(ok, fail, slot));
        return;
      }
    } else if (keyHash !== undefined) {
      // Key dedup: only the key identifies an entry (without one, every submission is new and
      // nothing is hashed or tracked here).
      dedupId = hex(keyHash);
      const same = this.#inflight.get(dedupId);
      if (same !== undefined) {
        // The same key with another payload: sequenced once that one settled, when storage
        // says CONFLICT (or, if that one failed, lets this one have the key).
        follow(
          same,
          bytesEqual(same.payload, payload)
            ? duplicateOf(ok, fail, slot)
            : () => this.#enqueue(payload, options, ok, fail, slot),
        );
        return;
      }
    }
    const pending = new Pending(
      this,
      payload,
      payloadHash,
      keyHash,
      options.submitter,
      dedupId,
      keyId,
      ok,
      fail,
      slot,
    );
    this.#waiting.push(pending);
    this.#bytes += payload.length;
    if (dedupId !== undefined) this.#inflight.set(dedupId, pending);
    if (keyId !== undefined) this.#inflightKeys.set(keyId, dedupId!);
    this.#schedule();
  }
}
