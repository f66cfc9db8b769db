/**
 * @module
 * The access log as `vellum serve --access-log` keeps it (spec/audit.md, "The access log"): a
 * second log, `<origin>/access`, with its own key (DATA/access.key, made on first use;
 * DATA/access.vkey is what auditors and witnesses need), so that its trust is distributed apart
 * from the log's; witnessed by the same policy, and indexed like the log when the index is on.
 */
import { join } from "node:path";
import { SIG_TYPE_ED25519 } from "../core/keys.js";
import type { Logger } from "../core/logger.js";
import { Log } from "../log/log.js";
import type { RollbackCheckStatus } from "../log/rollback-check.js";
import type { WitnessCollector } from "../log/witnessing.js";
import { openKey } from "./datadir.js";
import { openServerIndex, type ServerIndex } from "./serve-index.js";
import type { ServerStore } from "./serve-store.js";

export interface ServerAccessLog {
  readonly accessLog: Log;
  readonly accessIndex: ServerIndex | undefined;
}

export async function openServerAccessLog(options: {
  readonly dataDir: string;
  /** The main log's origin: the access log's is `<origin>/access`. */
  readonly origin: string;
  readonly store: ServerStore;
  /** A new witness collector (one per log: each log's witnessing runs on its own), when the server has a witness policy. */
  readonly witnesses: (() => WitnessCollector) | undefined;
  /** Whether to keep a verifiable index of the records (the server's --index). */
  readonly index: boolean;
  /** Least time between two revisions of that index (the server's --index-interval-ms). */
  readonly indexIntervalMs?: number;
  readonly logger: Logger;
}): Promise<ServerAccessLog> {
  const { dataDir, origin, store, witnesses, logger } = options;
  const name = `${origin}/access`;
  const key = openKey(dataDir, "access", SIG_TYPE_ED25519, {
    name,
    defaultName: name,
    what: "access log key",
    warn: (message) => logger.warn(message),
  });
  if (key.created) {
    logger.info(
      `created the access log's key in ${join(dataDir, "access.key")}; its verifier key (in access.vkey): ${key.verifierKey}`,
    );
  }
  const accessLog = await Log.open({
    origin: name,
    seed: key.seed,
    ...(await store.logPlace("access-log")),
    // Reads wait for their record: sequence at once, and never for a witness round (the record
    // is durable and signed then; witnesses cosign the access log as it goes).
    batchMaxAgeMs: 0,
    checkpointIntervalMs: 0,
    ...(witnesses === undefined
      ? {}
      : {
          witnesses: witnesses(),
          receiptWaitMs: 0,
          onStartCheck: (s: RollbackCheckStatus) => {
            if (s.state === "checking" && s.rounds === 1) {
              logger.warn(
                `the access log "${name}" is starting: ${s.detail}; reads of entry contents are refused until its witnesses answer (they must trust access.vkey)`,
              );
            } else if (s.state === "passed" && s.rounds > 1) {
              logger.info("the access log's witnesses answered: reads are served");
            } else if (s.state === "failed") {
              logger.error(`the access log: ${s.detail}`);
            }
          },
        }),
    onFailure: (error, event) =>
      logger.error(
        { class: event.class, event: event.kind, log: "access" },
        `the access log ${event.kind === "failed" ? "stopped recording reads (reads are refused) after a storage failure; recovering" : event.kind === "retry" ? `recovery attempt ${event.attempt} failed; retrying` : "cannot recover"}: ${error.message}`,
      ),
    onRecovered: (ms) =>
      logger.info(`the access log recovered after ${Math.round(ms)} ms; reads are served again`),
    onBatchUndone: (from, to) =>
      logger.warn(
        { log: "access" },
        `the access log's last batch (entries ${to} to ${from - 1}) was stored without its leaves (a crash or failure between its two writes); it was never acknowledged and was taken back out: the access log resumes at size ${to}`,
      ),
  });
  const accessIndex = options.index
    ? await openServerIndex({
        dataDir,
        place: await store.logPlace("access-index-log"),
        log: accessLog,
        origin: name,
        seed: key.seed,
        logger,
        ...(witnesses === undefined ? {} : { witnesses: witnesses() }),
        storeDir: "access-index",
        ...(options.indexIntervalMs === undefined
          ? {}
          : { revisionIntervalMs: options.indexIntervalMs }),
      })
    : undefined;
  logger.info(
    `recording every read of entry contents in the access log "${name}" (${accessLog.size} records; served under /access/)`,
  );
  return { accessLog, accessIndex };
}
