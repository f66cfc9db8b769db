/**
 * @module
 * The WORM archive as `vellum serve` runs it (spec/storage.md, "The archive"): `--archive` (or
 * `--bucket`, its name in the distributed setup) and `--retention` checked and the bucket opened
 * before anything is created; the archiver started once the log is open, with its gauges; and
 * the full hash tiles a standing-by front end serves from the bucket itself.
 */
import { Archiver } from "../archive/archiver.js";
import { parseBucketUrl, WormBucket } from "../archive/bucket.js";
import { parseRetention, type RetentionPeriod } from "../archive/retention.js";
import type { Logger } from "../core/logger.js";
import { LruCache } from "../core/lru.js";
import { formatTilePath, TILE_WIDTH } from "../core/tiles.js";
import type { Log } from "../log/log.js";
import type { SignedCheckpoint } from "../log/signer.js";
import type { Metrics } from "../server/metrics.js";
import type { KeyValueStore } from "../storage/types.js";
import { EXIT_IO, ExitError, usageError } from "./exit-codes.js";
import type { FullTileSource } from "./standby-proxy.js";

export interface ArchiveBucket {
  readonly bucket: WormBucket;
  readonly retention: RetentionPeriod;
}

/** --archive (or --bucket) and --retention: the bucket opened (Object Lock checked), or undefined. */
export async function openArchiveBucket(opts: {
  readonly archive?: string | undefined;
  readonly bucket?: string | undefined;
  readonly retention?: string | undefined;
}): Promise<ArchiveBucket | undefined> {
  if (opts.archive !== undefined && opts.bucket !== undefined) {
    throw usageError("--bucket is another name for --archive: give one of them");
  }
  const url = opts.archive ?? opts.bucket;
  const flag = opts.archive === undefined ? "--bucket" : "--archive";
  if (url === undefined) {
    if (opts.retention !== undefined) throw usageError("--retention is for --archive");
    return undefined;
  }
  if (opts.retention === undefined) {
    throw usageError(
      `${flag} needs --retention (e.g. 7y): locked objects can never be released early, so Vellum does not pick the period for you`,
    );
  }
  let retention: RetentionPeriod;
  try {
    parseBucketUrl(url);
    retention = parseRetention(opts.retention);
  } catch (e) {
    throw usageError((e as Error).message);
  }
  try {
    return { bucket: await WormBucket.open(url), retention };
  } catch (e) {
    throw new ExitError(EXIT_IO, `${flag} ${url}: ${(e as Error).message}`);
  }
}

/**
 * Full hash tiles as a standing-by front end reads them from the log's bucket: the original
 * (oldest, locked) version, so nothing written over it later is served; cached, as they never
 * change (1,024 tiles, 8 MiB).
 */
export function fullTilesFrom(bucket: WormBucket): FullTileSource {
  const cache = new LruCache<string, Uint8Array>(1024);
  return async (level, index) => {
    const name = formatTilePath({ level, index, width: TILE_WIDTH });
    const hit = cache.get(name);
    if (hit !== undefined) return hit;
    const bytes = await bucket.getOldest(name);
    if (bytes !== undefined) cache.set(name, bytes);
    return bytes;
  };
}

/**
 * Checkpoints the log signs before the archiver exists (while it opens): kept, then handed to
 * the archiver when it starts, so none is missing from the archive.
 */
export class CheckpointsForArchive {
  #early: SignedCheckpoint[] = [];
  #archiver: Archiver | undefined;

  notify(cp: SignedCheckpoint): void {
    if (this.#archiver === undefined) this.#early.push(cp);
    else this.#archiver.notify(cp);
  }

  /** Starts archiving the open log, with its gauges; the archiver, for the stop to close. */
  async start(
    log: Log,
    archive: ArchiveBucket,
    kv: KeyValueStore,
    metrics: Metrics,
    logger: Logger,
  ): Promise<Archiver> {
    const archiver = await Archiver.open({
      log,
      bucket: archive.bucket,
      retention: archive.retention,
      kv,
      logger,
    });
    for (const cp of this.#early) archiver.notify(cp);
    this.#early = [];
    this.#archiver = archiver;
    archiver.start();
    metrics.gauge(
      "vellum_archive_lag_entries",
      "Entries the log has signed whose full tiles are not yet in the WORM archive.",
      () => archiver.lag,
    );
    metrics.gauge(
      "vellum_archive_conflict",
      "1 once the archive stopped because the bucket holds other bytes than the log (an alarm), else 0.",
      () => (archiver.state === "conflict" ? 1 : 0),
    );
    logger.info(
      `archiving full tiles, bundles and checkpoints to ${archive.bucket.describe("")} (Object Lock, COMPLIANCE, ${archive.retention.text}); ${archiver.archived} entries archived so far`,
    );
    return archiver;
  }
}
