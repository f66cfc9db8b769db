/**
 * @module
 * The server's verifiable index (spec/audit.md, "The index"), as `vellum serve` keeps it: the
 * index log (origin `<origin>/index`, signed with the log's key, stored beside the main log in
 * DATA/db, witnessed by the same policy) and the index's own, derived store in DATA/index, which
 * can be dropped and rebuilt (`vellum index rebuild`), worked on in a child process at a lower
 * priority (src/indexing/child-store.ts) so that the index takes no time from the event loop
 * but reading the log's new entries, and yields the CPU to the log's own work.
 *
 * A derived index that cannot be opened (its store does not make the index log's last
 * revision) never stops the log: the server says why in its log and answers index queries 503.
 */
import { join } from "node:path";
import type { Logger } from "../core/logger.js";
import { ChildIndexStore } from "../indexing/child-store.js";
import { Indexer, type PublishedRevision } from "../indexing/engine.js";
import { Log } from "../log/log.js";
import type { WitnessCollector } from "../log/witnessing.js";
import type { LogPlace } from "./serve-store.js";

export interface ServerIndex {
  readonly indexLog: Log;
  /** Undefined when the index could not be opened (`failure` says why). */
  readonly indexer: Indexer | undefined;
  readonly failure: string | undefined;
  close(): Promise<void>;
}

export const INDEX_DIR = "index";

export function indexOrigin(origin: string): string {
  return `${origin}/index`;
}

/** Opens the index log of the log `origin` at `place` (e.g. `{ kv: db.namespace("index-log") }`). */
export function openIndexLog(
  place: LogPlace,
  origin: string,
  seed: Uint8Array,
  witnesses?: WitnessCollector,
): Promise<Log> {
  return Log.open({
    origin: indexOrigin(origin),
    seed,
    ...place,
    // A revision is one entry: sequenced at once.
    batchMaxAgeMs: 0,
    checkpointIntervalMs: 0,
    ...(witnesses === undefined ? {} : { witnesses }),
  });
}

export async function openServerIndex(options: {
  dataDir: string;
  /** Where the index log lives (serve-store.ts). */
  place: LogPlace;
  log: Log;
  origin: string;
  seed: Uint8Array;
  witnesses?: WitnessCollector;
  logger: Logger;
  onRevision?: (revision: PublishedRevision) => void;
  /** Another log's index (the access log's): its store's folder. */
  storeDir?: string;
  /** Least time between two index revisions (the server's --index-interval-ms). */
  revisionIntervalMs?: number;
}): Promise<ServerIndex> {
  const { logger } = options;
  const indexLog = await openIndexLog(
    options.place,
    options.origin,
    options.seed,
    options.witnesses,
  );
  const storeDir = options.storeDir ?? INDEX_DIR;
  let indexer: Indexer | undefined;
  let failure: string | undefined;
  let store: ChildIndexStore | undefined;
  try {
    store = await ChildIndexStore.open(join(options.dataDir, storeDir), "event-keys");
    indexer = await Indexer.open({
      source: options.log,
      indexLog,
      store,
      logger,
      ...(options.onRevision === undefined ? {} : { onRevision: options.onRevision }),
      ...(options.revisionIntervalMs === undefined
        ? {}
        : { revisionIntervalMs: options.revisionIntervalMs }),
    });
    indexer.start();
    logger.info(
      `verifiable index of "${options.origin}" in ${join(options.dataDir, storeDir)}: covers ${indexer.published?.revision.logSize ?? 0} entries; its log "${indexOrigin(options.origin)}" has ${indexLog.size} revisions (served under /index/)`,
    );
  } catch (e) {
    failure = (e as Error).message;
    logger.error(
      { err: e },
      `the verifiable index is unavailable (index queries answer 503; the log itself is unaffected): ${failure}`,
    );
  }
  return {
    indexLog,
    indexer,
    failure,
    async close() {
      if (indexer !== undefined) await indexer.close();
      else await store?.close();
      await indexLog.close();
    },
  };
}
