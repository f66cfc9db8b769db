/**
 * @module
 * One server-wide budget for request bodies in flight. Each body's bytes are reserved before
 * they are read (its declared Content-Length, or chunk by chunk as a chunked body arrives) and
 * given back when the request has been answered; while the sum would pass the budget, a request
 * that needs more is refused with 503 OVERLOADED and Retry-After before anything more is read.
 * A body's size bounds the memory its handling takes (the bytes, their text, the parsed JSON,
 * the decoded payloads: a few times the body), so this bounds the memory of all of them at once:
 * 40 concurrent 16 MiB batches took a server to 2.46 GB without it.
 *
 * Invariant: the bytes reserved by requests not yet answered never exceed `maxBytes`.
 */
import { VellumError } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/logger.js";

export const DEFAULT_BODY_BUDGET_BYTES = 64 * 1024 * 1024;

const MiB = 1024 * 1024;

export class BodyBudget {
  readonly maxBytes: number;
  #used = 0;
  readonly #held = new WeakMap<object, number>();
  #lastWarning = Number.NEGATIVE_INFINITY;

  readonly #logger: Logger;

  constructor(maxBytes = DEFAULT_BODY_BUDGET_BYTES, logger: Logger = silentLogger) {
    this.maxBytes = maxBytes;
    this.#logger = logger;
  }

  /** Reserves `bytes` more for `request`, or throws OVERLOADED (nothing reserved then). */
  reserve(request: object, bytes: number): void {
    if (this.#used + bytes > this.maxBytes) {
      const now = Date.now();
      // Said in the server's log, but at most every 10 s: a flood of 503s is one event.
      if (now - this.#lastWarning >= 10_000) {
        this.#lastWarning = now;
        this.#logger.warn(
          `request bodies in flight reached the budget of ${this.maxBytes / MiB} MiB: refusing bodies with 503 OVERLOADED until some are answered`,
        );
      }
      throw new VellumError(
        "OVERLOADED",
        `the server is already reading ${mib(this.#used)} MiB of request bodies (budget ${mib(this.maxBytes)} MiB); retry later`,
        { retryAfterMs: 1000 },
      );
    }
    this.#used += bytes;
    this.#held.set(request, (this.#held.get(request) ?? 0) + bytes);
  }

  /** Gives back what `request` reserved; call once it has been answered (or has failed). */
  release(request: object): void {
    const held = this.#held.get(request);
    if (held === undefined) return;
    this.#held.delete(request);
    this.#used -= held;
  }

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);
