/**
 * @module
 * The verifiable index (spec/audit.md, "The index"): follows a log, applies a published key
 * function to every entry, keeps each key's list (key-lists.ts) and the map from keys to lists
 * (map-store.ts) in its own store, and commits each revision (log size, log root, map root) as an
 * entry of a second, signed log: the index log. Any log can be followed with any key function;
 * the server follows its main log with the OCSF event keys (src/core/event-keys.ts).
 *
 * The index is derived, never authoritative: its store can be dropped, and opening replays the
 * followed log up to the index log's last revision and refuses to go on unless the replay makes
 * that revision's map root (`vellum index rebuild`). It lags the log by at most one revision's
 * work; answers say which tree they cover.
 *
 * Order of writes for a revision: (1) lists, map nodes and the revision's state in one atomic
 * write to the index store, (2) the revision into the index log (durable when acknowledged).
 * A crash between them leaves the store one revision ahead of the index log: opening appends
 * that revision (reconcile). The store never holds less than the index log says without being
 * replayed first.
 *
 * One lock serialises revisions and answers, so an answer always reads the store at exactly the
 * index log's latest revision.
 */
import { bytesEqual } from "../core/bytes.js";
import { leafPayload } from "../core/entry.js";
import { check, VellumError } from "../core/errors.js";
import type { IndexKey } from "../core/event-keys.js";
import { decodeRevision, encodeRevision, type IndexRevision } from "../core/index-answer.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { Mutex } from "../core/mutex.js";
import { EMPTY_HASH } from "../core/smt.js";
import type { Log } from "../log/log.js";
import type { KeyValueStore } from "../storage/types.js";
import type { IndexedEntry, IndexStore } from "./index-store.js";
import { LocalIndexStore } from "./local-store.js";

export interface IndexerOptions {
  /** The log the index follows. */
  readonly source: Log;
  /** The signed log of the index's revisions. */
  readonly indexLog: Log;
  /**
   * The index's own store (derived data: droppable): `store` (e.g. a ChildIndexStore), or a
   * key-value namespace and the published key function for a LocalIndexStore.
   */
  readonly store?: IndexStore;
  readonly kv?: KeyValueStore;
  readonly keysOf?: (payload: Uint8Array) => readonly IndexKey[];
  /** Most entries in one revision (default 20,000). */
  readonly maxRevisionEntries?: number;
  /** How often an idle index looks for new entries (default 50 ms). */
  readonly pollMs?: number;
  /**
   * Least time between two revisions while following (default REVISION_INTERVAL_MS): a revision
   * rewrites the map's top levels and the edge of every list it touches, and signs a checkpoint
   * of the index log, so fewer, larger revisions cost far less per event; the lag stays within
   * about this much plus one revision's work.
   */
  readonly revisionIntervalMs?: number;
  readonly logger?: Logger;
  /** Called with each revision once it is in the index log. */
  readonly onRevision?: (revision: PublishedRevision) => void;
}

/** A revision in the index log: what answers are proven against. */
export interface PublishedRevision {
  readonly revision: IndexRevision;
  /** Its entry in the index log. */
  readonly leafIndex: number;
  readonly leaf: Uint8Array;
  /** When it was committed (ms), for the lag metric. */
  readonly at: number;
}

const READ_CHUNK = 1000;

/**
 * The default least time between revisions. Measured in process over the same 200,000 events
 * (`npm run bench:index -- --only revisions`, 2026-12-05): revisions of 10,000 events cost
 * 146–157 µs of CPU (every thread) and 1.11 KiB of writes per event, revisions of 4,000 cost
 * 172–189 µs and 1.87 KiB. At the server's full single-event rate
 * here (about 4,000 events/s) 2.5 s makes revisions of about 10,000, and the index's lag p99
 * about 3.6–3.9 s (the target is 5 s); 1 s made them of about 4,000, with a lag p99 of 1.6 s.
 */
export const REVISION_INTERVAL_MS = 2500;

export class Indexer {
  readonly #source: Log;
  readonly #indexLog: Log;
  readonly #maxRevision: number;
  readonly #pollMs: number;
  readonly #revisionIntervalMs: number;
  readonly #logger: Logger;
  readonly #onRevision: IndexerOptions["onRevision"];
  /** Serialises revisions and answers (see the module comment). */
  readonly lock = new Mutex();
  readonly store: IndexStore;
  /** How many entries of the source the store covers, and its map root. */
  #size = 0;
  #mapRoot: Uint8Array = EMPTY_HASH;
  #published: PublishedRevision | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #failure: Error | undefined;

  private constructor(options: IndexerOptions) {
    this.#source = options.source;
    this.#indexLog = options.indexLog;
    this.#maxRevision = options.maxRevisionEntries ?? 20_000;
    this.#pollMs = options.pollMs ?? 50;
    this.#revisionIntervalMs = options.revisionIntervalMs ?? REVISION_INTERVAL_MS;
    this.#logger = options.logger ?? silentLogger;
    this.#onRevision = options.onRevision;
    if (options.store !== undefined) {
      this.store = options.store;
    } else {
      check(
        options.kv !== undefined && options.keysOf !== undefined,
        "INTERNAL",
        "an index needs a store, or a key-value namespace and a key function",
      );
      this.store = new LocalIndexStore(options.kv, options.keysOf);
    }
  }

  /**
   * Opens the index over its store and brings it to the index log's latest revision: replays
   * the log if the store is behind (a dropped store is rebuilt) and checks the replay makes the
   * revision's map root, or commits the store's revision if the index log missed it. Throws
   * STATE_MISMATCH when store and index log disagree.
   */
  static async open(options: IndexerOptions): Promise<Indexer> {
    const indexer = new Indexer(options);
    await indexer.lock.run(() => indexer.#reconcile());
    return indexer;
  }

  /** The latest revision in the index log (undefined before the first). */
  get published(): PublishedRevision | undefined {
    return this.#published;
  }

  /**
   * Whether the store is at exactly the published revision (not while a revision waits for the
   * index log to take it, e.g. after a failed commit): answers are built only then.
   */
  get settled(): boolean {
    return this.#published !== undefined && this.#published.revision.logSize === this.#size;
  }

  /** Entries of the source the index does not cover yet. */
  get lag(): number {
    return Math.max(0, this.#source.size - (this.#published?.revision.logSize ?? 0));
  }

  /** Why the index stopped following (it retries), if it did. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  get indexLog(): Log {
    return this.#indexLog;
  }

  get source(): Log {
    return this.#source;
  }

  /** The store's map root (what the next revision commits). */
  get mapRoot(): Uint8Array {
    return this.#mapRoot;
  }

  async #loadState(): Promise<void> {
    const state = await this.store.load();
    if (state.dropped !== undefined) this.#logger.warn({}, state.dropped);
    this.#size = state.size;
    this.#mapRoot = state.mapRoot;
  }

  async #lastRevision(): Promise<PublishedRevision | undefined> {
    const size = this.#indexLog.size;
    if (size === 0) return undefined;
    const entry = await this.#indexLog.entry(size - 1);
    return {
      revision: decodeRevision(entry.payload),
      leafIndex: size - 1,
      leaf: entry.leaf,
      at: entry.timestamp,
    };
  }

  async #reconcile(): Promise<void> {
    await this.#loadState();
    const last = await this.#lastRevision();
    const target = last?.revision.logSize ?? 0;
    check(
      this.#source.size >= Math.max(target, this.#size),
      "STATE_MISMATCH",
      `the index covers ${Math.max(target, this.#size)} entries, the log holds ${this.#source.size}`,
    );
    if (this.#size < target) {
      this.#logger.warn(
        { indexed: this.#size, revision: target },
        `the index store covers ${this.#size} entries, its log's last revision ${target}: replaying the log`,
      );
      while (this.#size < target) {
        await this.#apply(Math.min(target, this.#size + this.#maxRevision));
      }
    }
    if (this.#size === target && last !== undefined) {
      if (!bytesEqual(this.#mapRoot, last.revision.mapRoot)) {
        throw new VellumError(
          "STATE_MISMATCH",
          `the index store's map at ${target} entries is not the one the index log committed (revision ${last.leafIndex}); drop the index store and rebuild it (vellum index rebuild)`,
        );
      }
      const root = await this.#source.rootAt(target);
      check(
        bytesEqual(root, last.revision.logRoot),
        "STATE_MISMATCH",
        `the index log's revision ${last.leafIndex} is for another tree than the log's at ${target}`,
      );
      this.#published = last;
      return;
    }
    // The store is ahead of the index log (a crash between the two writes): the follower
    // commits its revision first (catchUp), once the index log accepts entries.
    this.#published = last;
  }

  /** Applies source entries [size, target) to the store (one atomic write). */
  async #apply(target: number): Promise<void> {
    const entries: IndexedEntry[] = [];
    for (let start = this.#size; start < target; start += READ_CHUNK) {
      const read = await this.#source.leaves(start, Math.min(READ_CHUNK, target - start));
      check(read.length > 0, "INTERNAL", `the log returned no entries from ${start}`);
      for (let k = 0; k < read.length; k++) {
        entries.push({ index: start + k, payload: leafPayload(read[k]!) });
      }
    }
    try {
      this.#mapRoot = await this.store.apply(entries);
      this.#size = target;
    } catch (e) {
      // The store may be behind what it was told: it is the truth.
      await this.#loadState().catch(() => undefined);
      throw e;
    }
  }

  /** Puts the store's revision into the index log. */
  async #commit(): Promise<void> {
    const revision: IndexRevision = {
      logSize: this.#size,
      logRoot: await this.#source.rootAt(this.#size),
      mapRoot: this.#mapRoot,
    };
    const receipt = await this.#indexLog.submit(encodeRevision(revision));
    const entry = await this.#indexLog.entry(receipt.index);
    const published = { revision, leafIndex: receipt.index, leaf: entry.leaf, at: Date.now() };
    this.#published = published;
    this.#onRevision?.(published);
  }

  /** Indexes what the source holds now, in revisions; resolves when it is covered. */
  async catchUp(): Promise<void> {
    while (await this.#step()) {}
  }

  /**
   * One revision: the entries the source holds beyond the store (at most maxRevisionEntries),
   * committed; or a revision the store holds that the index log does not yet. Returns false
   * when there was nothing to do.
   */
  async #step(): Promise<boolean> {
    return this.lock.run(async () => {
      // What the log has published (with witnesses: what met the quorum), so that every
      // revision is of a tree an answer's checkpoint covers.
      const size = this.#source.published?.checkpoint.size ?? 0;
      const covered = this.#published?.revision.logSize ?? -1;
      if (this.#size > covered) {
        await this.#commit();
        return true;
      }
      if (covered >= size) return false;
      await this.#apply(Math.min(size, this.#size + this.#maxRevision));
      await this.#commit();
      return true;
    });
  }

  /** Follows the source in the background until close(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#follow();
  }

  async #follow(): Promise<void> {
    let pauseMs = this.#pollMs;
    while (this.#running) {
      try {
        const started = performance.now();
        const behind = await this.#step();
        if (this.#failure !== undefined) {
          this.#logger.info({}, "the index follows the log again");
          this.#failure = undefined;
        }
        // After a revision, wait out the interval from its start; idle, poll.
        pauseMs = behind
          ? Math.max(this.#pollMs, this.#revisionIntervalMs - (performance.now() - started))
          : this.#pollMs;
      } catch (e) {
        if (!this.#running) break;
        this.#failure = e as Error;
        this.#logger.error(
          { err: e },
          `the index could not take in the log's new entries (retrying): ${(e as Error).message}`,
        );
        pauseMs = Math.min(5000, Math.max(pauseMs * 2, 200));
      }
      if (!this.#running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pauseMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Stops following and releases the store; the index log stays as it is. */
  async close(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    await this.lock.run(() => this.store.close());
  }
}
