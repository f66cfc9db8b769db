/**
 * @module
 * The WORM archive of a log (spec/storage.md, "The archive"): copies every full hash tile,
 * every full entry bundle and every checkpoint the log signs into an S3 bucket with Object Lock,
 * each object locked in COMPLIANCE mode for the retention period, so that a single-machine log
 * gets retention nobody can shorten — not the operator, not the log's own credentials.
 *
 * What goes where (under the bucket's prefix), all create-only (bucket.ts):
 *   tile/<L>/<N>, tile/entries/<N>       full tiles and bundles, C2SP tlog-tiles paths and bytes
 *   checkpoints/<first>-<last>/<sha256>  every signed checkpoint note (re-signed ones at one
 *                                        size, and cosigned ones, too), in runs: one object a
 *                                        second at most, JSON Lines, named by its hash
 *                                        (checkpointRun)
 * Partial tiles are not archived (locked): they are superseded, and the full tile that replaces
 * one holds its hashes. The head — `checkpoint` (the published one) and the partial tiles and
 * bundle of its size — is written unlocked and replaced as the log grows, so the bucket alone
 * serves a whole tlog-tiles log to any client (writeHead). A checkpoint past the last full bundle
 * is checked by `vellum archive check` by its signature only until the log fills that bundle.
 *
 * Order: the tiles of a size before any checkpoint of that size, so an archived checkpoint's
 * full tiles are always there. Progress (the size whose full tiles are all archived) is kept in
 * the log's database; after a crash the archiver redoes at most one step, and redoing is safe
 * (an object already there with the same bytes is success).
 *
 * The archive never holds back the log: it lags (vellum_archive_lag_entries) while the bucket
 * is unreachable and catches up with backoff; a conflict (the bucket holds other bytes under a
 * name the log writes) stops the archive and is said as an alarm in the server's log.
 */

import { hexEncode, utf8Decode, utf8Encode } from "../core/bytes.js";
import { sha256 } from "../core/crypto.js";
import { check, isVellumError, type VellumError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { formatTilePath, partialTileWidth, TILE_WIDTH, tilesBetween } from "../core/tiles.js";
import type { Log } from "../log/log.js";
import type { SignedCheckpoint } from "../log/signer.js";
import type { KeyValueStore } from "../storage/types.js";
import type { WormBucket } from "./bucket.js";
import { inParallel } from "./parallel.js";
import { type RetentionPeriod, retainUntil } from "./retention.js";

const PROGRESS_KEY = utf8Encode("archived");

/**
 * Objects written at once. One at a time (each a read then a write, create-only) kept up with
 * about 80 objects a second against radosgw here — behind a log sealing 40 bundles and tiles and
 * signing 100 checkpoints a second under load.
 */
const PARALLEL_PUTS = 16;

const pad20 = (n: number) => String(n).padStart(20, "0");

/**
 * A run of checkpoint notes as one archive object: JSON Lines, one JSON string (the note) per
 * line, smallest size first, named `checkpoints/<first size>-<last size>/<sha256 of the object>`
 * (20 digits each). One object a second at most rather than one per note: a loaded log signs a
 * checkpoint per batch, ~100 a second, which as objects would be billions over a retention of
 * years and most of the object store's work (measured: the bucket cost the distributed setup a
 * third of its rate). Named by its hash, so no run is ever overwritten.
 */
export function checkpointRun(notes: readonly string[]): { name: string; bytes: Uint8Array } {
  const sized = notes
    .map((note) => ({ note, size: Number(note.split("\n")[1]) }))
    .sort((a, b) => a.size - b.size);
  const bytes = utf8Encode(sized.map((n) => `${JSON.stringify(n.note)}\n`).join(""));
  const first = sized[0]?.size ?? 0;
  const last = sized.at(-1)?.size ?? 0;
  return { name: `checkpoints/${pad20(first)}-${pad20(last)}/${hexEncode(sha256(bytes))}`, bytes };
}

/** The notes of a run object (checkpointRun); throws MALFORMED on anything else. */
export function readCheckpointRun(bytes: Uint8Array): string[] {
  const text = utf8Decode(bytes, "checkpoint run");
  check(text.endsWith("\n"), "MALFORMED", "a checkpoint run must end with a newline");
  return text
    .slice(0, -1)
    .split("\n")
    .map((line, i) => {
      let note: unknown;
      try {
        note = JSON.parse(line);
      } catch {
        note = undefined;
      }
      check(
        typeof note === "string",
        "MALFORMED",
        `line ${i + 1} of a checkpoint run is not a JSON string`,
      );
      return note as string;
    });
}

/** Notes per run object, at most (a step after a long outage writes several). */
const RUN_MAX_NOTES = 10_000;

export interface ArchiverOptions {
  readonly log: Log;
  readonly bucket: WormBucket;
  readonly retention: RetentionPeriod;
  /** Where progress is kept (a namespace of the log's database). */
  readonly kv: KeyValueStore;
  readonly logger?: Logger;
  /** How often to archive new full tiles and bundles (default 250 ms). */
  readonly pollMs?: number;
  /**
   * How often, at most, to write a run of checkpoints and the head (default 1000 ms): each run is
   * a locked object kept for the whole retention, so their number is what this bounds.
   */
  readonly checkpointsEveryMs?: number;
  /** Backoff after a failed step: first and longest pause (default 500 ms, 60 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export type ArchiverState = "running" | "retrying" | "stopped" | "conflict";

export class Archiver {
  readonly #o: ArchiverOptions;
  #archived: number;
  #pending: string[] = [];
  #lastPublished: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #state: ArchiverState = "stopped";
  #pause: number;
  #failure: VellumError | undefined;
  #objects = 0;
  #headNote: string | undefined;
  #headTiles: string[] = [];
  /** A step has gone through since this archiver opened. */
  #steppedOnce = false;
  /** When the last run of checkpoints was written (performance.now()). */
  #checkpointsAt = Number.NEGATIVE_INFINITY;

  private constructor(options: ArchiverOptions, archived: number) {
    this.#o = options;
    this.#archived = archived;
    this.#pause = options.retryMinMs ?? 500;
  }

  static async open(options: ArchiverOptions): Promise<Archiver> {
    const stored = await options.kv.get(PROGRESS_KEY);
    const archived =
      stored === undefined
        ? 0
        : Number(new DataView(stored.buffer, stored.byteOffset).getBigUint64(0));
    const archiver = new Archiver(options, archived);
    // The log's current checkpoint, and the published one (cosigned, where witnessed).
    archiver.notify(options.log.checkpoint);
    return archiver;
  }

  /** Entries of the log whose full tiles are archived. */
  get archived(): number {
    return this.#archived;
  }

  /** Entries the log has signed beyond what the archive holds. */
  get lag(): number {
    return Math.max(0, this.#o.log.checkpoint.checkpoint.size - this.#archived);
  }

  get state(): ArchiverState {
    return this.#state;
  }

  /** Why the last step failed (while retrying, or stopped on a conflict). */
  get failure(): VellumError | undefined {
    return this.#failure;
  }

  /** Objects written (not counting ones found already there) since start. */
  get objectsWritten(): number {
    return this.#objects;
  }

  /** Queues a signed checkpoint to keep (the log's onCheckpoint hook). */
  notify(signed: SignedCheckpoint): void {
    this.#pending.push(signed.note);
  }

  /** Archives in the background, every pollMs, until close(). */
  start(): void {
    if (this.#state !== "stopped") return;
    this.#state = "running";
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#state === "stopped" || this.#state === "conflict") return;
    this.#timer = setTimeout(() => {
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
      });
    }, ms);
    this.#timer.unref?.();
  }

  async #tick(): Promise<void> {
    try {
      await this.step(false);
      if (this.#state === "retrying") {
        this.#o.logger?.info(`the archive is written again (${this.#o.bucket.describe("")})`);
      }
      this.#state = "running";
      this.#failure = undefined;
      this.#pause = this.#o.retryMinMs ?? 500;
      this.#schedule(this.#o.pollMs ?? 250);
    } catch (e) {
      const error = e as VellumError;
      this.#failure = error;
      if (isVellumError(e, "INTEGRITY_FAILURE")) {
        this.#state = "conflict";
        this.#o.logger?.error(
          { alarm: "archive-conflict" },
          `ALARM: the archive stopped: ${error.message}. Nothing in the bucket was changed; compare the object with the log (vellum archive check) before anything else`,
        );
        return;
      }
      if (this.#state === "stopped") return;
      this.#o.logger?.error(
        `the archive is behind by ${this.lag} entries and retrying in ${this.#pause} ms: ${error.message}`,
      );
      this.#state = "retrying";
      const pause = this.#pause;
      this.#pause = Math.min(pause * 2, this.#o.retryMaxMs ?? 60_000);
      this.#schedule(pause);
    }
  }

  /**
   * One pass: the full tiles and bundles up to the log's current checkpoint, then every
   * checkpoint queued (and the published one, if new) up to that size, and the head — those
   * two only if `checkpointsEveryMs` has passed since they were last written, or `all`. Small,
   * frequent passes for the tiles (every pollMs) keep each one's burst of requests short: with
   * one pass a second, a loaded log's submitters saw p99 550-680 ms, with four 330-370 ms.
   * Public for tests and `vellum archive` runs that go once.
   */
  async step(all = true): Promise<void> {
    const { log, bucket, retention } = this.#o;
    const size = log.checkpoint.checkpoint.size;
    const until = () => retainUntil(retention, new Date());
    // Once a step has gone through, what later steps write is new: past the progress, which
    // moves only after its objects are written, and this archiver is the prefix's only writer.
    // The first step after a start looks before each write: it may redo a step a crash cut off.
    const known = this.#steppedOnce ? ({ known: "new" } as const) : {};
    this.#steppedOnce = false; // until this step has gone through: a retry looks again
    if (size > this.#archived) {
      const full = [...tilesBetween(this.#archived, size)].filter((t) => t.width === TILE_WIDTH);
      await inParallel(full, PARALLEL_PUTS, async (tile) => {
        const bytes =
          tile.level === "entries"
            ? await log.entryBundle(tile.index, TILE_WIDTH)
            : await log.hashTile(tile.level, tile.index, TILE_WIDTH);
        if ((await bucket.putLocked(formatTilePath(tile), bytes, until(), known)) === "written") {
          this.#objects++;
        }
      });
      this.#archived = size;
      const value = new Uint8Array(8);
      new DataView(value.buffer).setBigUint64(0, BigInt(size));
      await this.#o.kv.write([{ type: "put", key: PROGRESS_KEY, value }]);
    }
    const now = performance.now();
    if (!all && now - this.#checkpointsAt < (this.#o.checkpointsEveryMs ?? 1000)) {
      this.#steppedOnce = true;
      return;
    }
    this.#checkpointsAt = now;
    const published = log.published?.note;
    if (published !== undefined && published !== this.#lastPublished) this.#pending.push(published);
    // Every queued checkpoint whose tiles are archived (a later one waits for its tiles), in
    // run objects.
    const ready = [...new Set(this.#pending)].filter(
      (note) => Number(note.split("\n")[1]) <= this.#archived,
    );
    const runs: string[][] = [];
    for (let i = 0; i < ready.length; i += RUN_MAX_NOTES) {
      runs.push(ready.slice(i, i + RUN_MAX_NOTES));
    }
    await inParallel(runs, PARALLEL_PUTS, async (notes) => {
      const run = checkpointRun(notes);
      if ((await bucket.putLocked(run.name, run.bytes, until(), known)) === "written") {
        this.#objects++;
      }
    });
    const done = new Set(ready);
    this.#pending = this.#pending.filter((note) => !done.has(note));
    if (published !== undefined && done.has(published)) this.#lastPublished = published;
    if (published !== undefined) await this.#writeHead(published);
    this.#steppedOnce = true;
  }

  /**
   * The head: the published checkpoint as `checkpoint` and the partial tiles and bundle of its
   * size, unlocked, so that the bucket alone is a whole C2SP tlog-tiles log a client can read
   * (full tiles and bundles are the locked objects). The head's partial tiles of an earlier size
   * are deleted once the new ones are written.
   */
  async #writeHead(note: string): Promise<void> {
    if (note === this.#headNote) return;
    const { log, bucket } = this.#o;
    const size = Number(note.split("\n")[1]);
    if (size > this.#archived) return;
    const names: string[] = [];
    for (let level = 0; Math.floor(size / TILE_WIDTH ** level) > 0; level++) {
      const width = partialTileWidth(size, level);
      if (width === 0) continue;
      const index = Math.floor(size / TILE_WIDTH ** (level + 1));
      const name = formatTilePath({ level, index, width });
      await bucket.putHead(name, await log.hashTile(level, index, width));
      names.push(name);
    }
    const width = size % TILE_WIDTH;
    if (width > 0) {
      const index = Math.floor(size / TILE_WIDTH);
      const name = formatTilePath({ level: "entries", index, width });
      await bucket.putHead(name, await log.entryBundle(index, width));
      names.push(name);
    }
    await bucket.putHead("checkpoint", utf8Encode(note), "text/plain; charset=utf-8");
    for (const old of this.#headTiles) if (!names.includes(old)) await bucket.deleteHead(old);
    this.#headTiles = names;
    this.#headNote = note;
  }

  /** Stops after the step in progress; a last step archives what the log signed so far. */
  async close(): Promise<void> {
    const wasRunning = this.#state === "running" || this.#state === "retrying";
    this.#state = "stopped";
    clearTimeout(this.#timer);
    await this.#running;
    if (wasRunning) {
      await this.step().catch((e) =>
        this.#o.logger?.error(`the archive's last step failed: ${(e as Error).message}`),
      );
    }
  }
}
