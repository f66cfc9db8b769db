/**
 * @module
 * Fail-stop for the witness's store (spec/witness.md, "Storage failures"). After a write fails,
 * what the store holds is unknown: the write may have landed or not, and a store that kept going
 * after a failed write has been seen to acknowledge writes it then lost at a restart (issue 10: 95
 * cosignatures after ENOSPC, a restart 114 sizes back, then a cosigned fork). So:
 *
 * Invariant: from the moment a write fails until `KeyValueStore.recover()` has succeeded and the
 * witness's state has been re-read from the reopened store, nothing that depends on storage is
 * answered: {@link FailStop.check} throws {@link StorageUnavailable} (the HTTP layer's 503), and
 * a request that began before a failure or a recovery (another epoch) is not answered 200 even if
 * its own write resolved. Recovery runs in the background with back-off; every failure and every
 * attempt is logged with its cause.
 */
import { nextBackoff } from "../core/backoff.js";
import { VellumError } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/logger.js";
import {
  describeStorageFailure,
  type StorageFailureClass,
  storageFailureClass,
} from "../storage/failure.js";
import type { KeyValueStore, WriteOp } from "../storage/types.js";

export interface StorageFailureInfo {
  /** ENOSPC, EIO, EROFS, CORRUPTION, …, or OTHER. */
  readonly class: StorageFailureClass;
  /** The class in words, e.g. "disk full (ENOSPC)". */
  readonly description: string;
  /** The failed operation's error message. */
  readonly message: string;
  /** Milliseconds since the epoch when the failure began. */
  readonly since: number;
}

/** Refused because storage is failing (or failed during the request): a 503. */
export class StorageUnavailable extends Error {
  constructor(readonly failure: StorageFailureInfo) {
    super(
      `the witness's storage is failing (${failure.description}); it answers nothing from storage until the store has been reopened`,
    );
  }
}

export interface FailStopOptions {
  /** First and longest wait between attempts to reopen the store (default 100 ms, 5 s). */
  readonly backoffMs?: readonly [first: number, max: number];
  /** Where failures (error) and recoveries (warn) are reported (default: nowhere). */
  readonly logger?: Logger;
}

function info(e: unknown, since: number): StorageFailureInfo {
  const description = describeStorageFailure(e);
  const message = causes(e);
  return {
    class: storageFailureClass(e),
    description,
    // Drivers' messages may start with the description already ("disk full (ENOSPC): …").
    message: message.startsWith(`${description}: `)
      ? message.slice(description.length + 2)
      : message,
    since,
  };
}

/** The error's message and its causes' ("write 2 failed: No space left on device"). */
function causes(e: unknown): string {
  const parts: string[] = [];
  for (let err = e, depth = 0; err !== undefined && err !== null && depth < 5; depth++) {
    const text = err instanceof Error ? err.message : String(err);
    if (!parts.some((p) => p.includes(text))) parts.push(text);
    err = err instanceof Error ? err.cause : undefined;
  }
  return parts.join(": ");
}

export class FailStop {
  readonly #kv: KeyValueStore;
  readonly #reload: () => Promise<void>;
  readonly #backoff: readonly [number, number];
  readonly #logger: Logger;
  #failure: StorageFailureInfo | undefined;
  #epoch = 0;
  #recovering = false;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Failed writes since start. */
  failedWrites = 0;
  /** Failed reads since start (answered 503; reads do not stop the witness). */
  failedReads = 0;

  /**
   * @param kv the store to guard and to recover.
   * @param reload re-reads the witness's state from the reopened store (throws if it cannot).
   */
  constructor(kv: KeyValueStore, reload: () => Promise<void>, options: FailStopOptions = {}) {
    this.#kv = kv;
    this.#reload = reload;
    this.#backoff = options.backoffMs ?? [100, 5_000];
    this.#logger = options.logger ?? silentLogger;
  }

  /** The current failure, or undefined when storage is usable. */
  get failure(): StorageFailureInfo | undefined {
    return this.#failure;
  }

  /** Changes at every failure and every recovery. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Throws StorageUnavailable while failing, or if the epoch is no longer `epoch`. */
  check(epoch = this.#epoch): void {
    if (this.#failure !== undefined) throw new StorageUnavailable(this.#failure);
    if (epoch !== this.#epoch) {
      throw new StorageUnavailable({
        class: "OTHER",
        description: "storage failed and recovered during this request",
        message: "the request began before a storage failure or recovery",
        since: Date.now(),
      });
    }
  }

  /** `kv` with every write checked first and run through {@link write}. */
  guarded(): KeyValueStore {
    const kv = this.#kv;
    return {
      get: (key) => this.#read(() => kv.get(key)),
      getMany: (keys) => this.#read(() => kv.getMany(keys)),
      range: (options) => this.#read(() => kv.range(options)),
      write: (ops) => this.write(ops),
      recover: () => kv.recover(),
      close: () => kv.close(),
    };
  }

  /** A write: refused while failing; a failure stops everything until recovery. */
  async write(ops: readonly WriteOp[]): Promise<void> {
    this.check();
    try {
      await this.#kv.write(ops);
    } catch (e) {
      this.#fail(e);
      throw new StorageUnavailable(this.#failure!);
    }
  }

  /** Stops the recovery loop (at shutdown). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (e) {
      if (!(e instanceof VellumError && e.code === "STORAGE_FAILURE")) throw e;
      this.failedReads++;
      const failure = info(e, Date.now());
      this.#logger.error(
        { class: failure.class },
        `storage read failed (${failure.description}): ${failure.message}`,
      );
      throw new StorageUnavailable(failure);
    }
  }

  #fail(e: unknown): void {
    this.failedWrites++;
    const failure = info(e, Date.now());
    if (this.#failure === undefined) {
      this.#failure = failure;
      this.#epoch++;
      this.#logger.error(
        { class: failure.class },
        `storage write failed (${failure.description}): ${failure.message}; cosigning stopped until the store has been reopened and the state re-read`,
      );
      this.#schedule(this.#backoff[0]);
    } else {
      this.#logger.error(
        { class: failure.class },
        `storage write failed again (${failure.description}): ${failure.message}`,
      );
    }
  }

  #schedule(delay: number): void {
    if (this.#closed || this.#recovering) return;
    this.#recovering = true;
    this.#timer = setTimeout(() => void this.#attempt(delay), delay);
    this.#timer.unref?.();
  }

  async #attempt(delay: number): Promise<void> {
    this.#timer = undefined;
    if (this.#closed) return;
    const since = this.#failure?.since ?? Date.now();
    try {
      await this.#kv.recover();
      await this.#reload();
    } catch (e) {
      const next = nextBackoff(delay, this.#backoff[1]);
      const failure = info(e, since);
      this.#logger.error(
        { class: failure.class, nextAttemptMs: next },
        `reopening the store failed (${failure.description}): ${failure.message}; next attempt in ${next} ms`,
      );
      this.#recovering = false;
      this.#schedule(next);
      return;
    }
    this.#recovering = false;
    const was = this.#failure;
    this.#failure = undefined;
    this.#epoch++;
    // warn, not info: the end of an incident goes to stderr beside its start.
    this.#logger.warn(
      `store reopened and state re-read ${Date.now() - since} ms after the failure (${was?.description ?? "unknown"}); cosigning again`,
    );
  }
}
