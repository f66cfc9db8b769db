/**
 * `vellum serve`: the log server on an embedded default. On first start the data directory gets
 * the log's key (0600), its verifier key, a LevelDB database and an admin token (0600); later
 * starts check them. SIGINT/SIGTERM stop it cleanly: stop accepting connections, drain the queue,
 * sign a final checkpoint, close the database.
 *
 * The settings table and the start-up wiring in the order it runs (data directory, store,
 * tokens, markers, witnesses, the log, archive, index, access log, HTTP, signals); each part
 * that is a concept of its own lives beside it: serve-store.ts (embedded or PostgreSQL, the
 * lease), serve-archive.ts, serve-index.ts, serve-access.ts, admin-token.ts.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import { TokenStore } from "../auth/tokens.js";
import { isVellumError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { parsePolicy } from "../core/policy.js";
import { parseDedup } from "../log/dedup.js";
import { Log } from "../log/log.js";
import type { RollbackCheckStatus } from "../log/rollback-check.js";
import { WitnessCollector } from "../log/witnessing.js";
import { createLogger, type ProcessLogger } from "../platform/logger.js";
import { createApp } from "../server/app.js";
import { logGauges, logMetricHooks, Metrics } from "../server/metrics.js";
import type { ExplorerAssets } from "../server/routes/explorer.js";
import { ensureAdminToken } from "./admin-token.js";
import {
  addSettings,
  asOptions,
  printConfig,
  readInput,
  resolveSettings,
  type SettingsTable,
} from "./config.js";
import { lockDataDir } from "./data-lock.js";
import { checkDataDirPath, checkKeyName, openDataDir } from "./datadir.js";
import {
  EXIT_EVIDENCE,
  EXIT_IO,
  EXIT_OK,
  EXIT_USAGE,
  ExitError,
  errorLine,
  exitCodesHelp,
  usageError,
} from "./exit-codes.js";
import { checkCanListen, listenError } from "./listen.js";
import { CheckpointMarker, checkMirrorDir, readMarkers } from "./marker.js";
import { openServerAccessLog } from "./serve-access.js";
import { CheckpointsForArchive, fullTilesFrom, openArchiveBucket } from "./serve-archive.js";
import { openServerIndex } from "./serve-index.js";
import { describePostgresUrl, openServerStore, type ServerStore } from "./serve-store.js";
import { startStandbyProxy } from "./standby-proxy.js";

export const DEFAULT_PORT = 6962;
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_DATA = "vellum-data";

/**
 * Every `vellum serve` setting, once: flag, environment variable (VELLUM_ + the name), key in
 * the --config file, default and check (src/cli/config.ts).
 */
export const SERVE_SETTINGS: SettingsTable = {
  command: "serve",
  envPrefix: "VELLUM_",
  settings: [
    { name: "data", kind: "path", arg: "<dir>", help: "data directory", default: DEFAULT_DATA },
    {
      name: "port",
      kind: "int",
      arg: "<n>",
      help: "TCP port (0: any free port)",
      default: DEFAULT_PORT,
      min: 0,
      max: 65535,
    },
    {
      name: "host",
      kind: "string",
      arg: "<addr>",
      help: "address to listen on",
      default: DEFAULT_HOST,
    },
    {
      name: "origin",
      kind: "string",
      arg: "<name>",
      help: "the log's origin on first start",
      defaultHelp: "<hostname>/vellum",
    },
    {
      name: "public",
      kind: "bool",
      help: "serve entries and entry bundles without a token",
      default: false,
    },
    {
      name: "batch-max-entries",
      kind: "int",
      arg: "<n>",
      help: "most entries per sequenced batch",
      min: 1,
      max: 100_000,
    },
    {
      name: "batch-max-age-ms",
      kind: "int",
      arg: "<ms>",
      help: "how long an idle log waits for more entries before a batch",
      min: 0,
      max: 10_000,
    },
    {
      name: "checkpoint-interval",
      kind: "int",
      arg: "<s>",
      help: "re-sign an idle log's checkpoint every s seconds",
      min: 1,
      max: 86_400,
    },
    {
      name: "witness-policy",
      kind: "path",
      arg: "<file>",
      help: "C2SP tlog-policy file: witnesses (with URLs) and the quorum a checkpoint needs before it is published",
    },
    {
      name: "witness-timeout-ms",
      kind: "int",
      arg: "<ms>",
      help: "how long to wait for each witness",
      defaultHelp: "2000",
      min: 1,
      max: 60_000,
    },
    {
      name: "advertise-url",
      kind: "string",
      arg: "<url>",
      help: "with --store: the URL other servers forward to while this one is the writer",
      defaultHelp: "http://HOST:PORT as it listens",
    },
    {
      name: "store",
      kind: "string",
      arg: "<postgres://…>",
      help: "keep the logs, tokens and the rest in PostgreSQL instead of the embedded LevelDB in DATA/db (keys and the rollback marker stay in DATA)",
    },
    {
      name: "archive",
      kind: "string",
      arg: "<s3://bucket/prefix>",
      help: "copy every full tile, bundle and checkpoint into this S3 bucket with Object Lock, locked in COMPLIANCE mode (needs --retention; endpoint and credentials as AWS tools take them)",
    },
    {
      name: "bucket",
      kind: "string",
      env: "VELLUM_BUCKET_URL",
      arg: "<s3://bucket/prefix>",
      help: "--archive by the name the distributed setup uses: the log's public tiles in a bucket with Object Lock, from which standing-by servers serve full tiles themselves",
    },
    {
      name: "retention",
      kind: "string",
      arg: "<period>",
      help: "how long archived objects are locked, e.g. 7y, 90d (no default: it cannot be shortened later)",
    },
    {
      name: "state-mirror",
      kind: "path",
      arg: "<dir>",
      help: "an existing directory outside --data where a second copy of the rollback marker is kept",
    },
    {
      name: "dedup",
      kind: "string",
      arg: "<rule>",
      help: 'what makes a resubmission the same entry: "key" (only the same Idempotency-Key) or "payload" (also identical bytes). Stored with the log; "payload" to "key" is allowed once, never back',
      defaultHelp:
        '"key" for a new log; a log keeps its stored rule, "payload" for one from before this setting',
    },
    {
      name: "cache-mb",
      kind: "int",
      arg: "<mib>",
      help: "memory for cached tree tiles, used by proofs",
      default: 128,
      min: 16,
      max: 65_536,
    },
    {
      name: "bundle-cache-mb",
      kind: "int",
      arg: "<mib>",
      help: "memory for cached entry bundles, by bytes (0 turns it off)",
      default: 64,
      min: 0,
      max: 65_536,
    },
    {
      name: "body-budget-mb",
      kind: "int",
      arg: "<mib>",
      help: "most request-body bytes in flight, all requests together; past it 503 OVERLOADED (at least 16)",
      default: 64,
      min: 16,
      max: 65_536,
    },
    {
      name: "index",
      kind: "bool",
      help: "keep the verifiable index of events (DATA/index; its signed log under /index/)",
      default: true,
    },
    {
      name: "index-interval-ms",
      kind: "int",
      arg: "<ms>",
      help: "least time between two revisions of the index: longer costs less per event, and the index lags the log by about this much more",
      defaultHelp: "2500",
      min: 100,
      max: 60_000,
    },
    {
      name: "access-log",
      kind: "bool",
      help: "record every read of entry contents in the access log (<origin>/access, under /access/); a read that cannot be recorded is refused",
      default: false,
    },
    {
      name: "allow-clock-behind",
      kind: "bool",
      help: "start even if the clock is behind the last checkpoint; timestamps stay at the last issued until it catches up",
      default: false,
    },
    {
      name: "log-level",
      kind: "string",
      arg: "<level>",
      help: "debug, info (a line per request), warn, error or silent",
      default: "info",
    },
  ],
};

/** The settings, resolved and checked (src/cli/config.ts), as runServe takes them. */
export interface ServeOptions {
  data: string;
  port: number;
  host: string;
  origin?: string;
  public: boolean;
  batchMaxEntries?: number;
  batchMaxAgeMs?: number;
  checkpointInterval?: number;
  witnessPolicy?: string;
  witnessTimeoutMs?: number;
  cacheMb: number;
  bundleCacheMb: number;
  bodyBudgetMb: number;
  allowClockBehind: boolean;
  index: boolean;
  indexIntervalMs?: number;
  accessLog: boolean;
  stateMirror?: string;
  store?: string;
  advertiseUrl?: string;
  archive?: string;
  bucket?: string;
  retention?: string;
  dedup?: string;
  logLevel?: string;
}

/** The running version (package.json), for vellum_build_info. */
export const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

/** The process's logger; a bad --log-level is a usage error, before anything is created. */
export function processLogger(name: string, level: string | undefined): ProcessLogger {
  try {
    return createLogger({ name, level });
  } catch (e) {
    throw usageError((e as Error).message);
  }
}

/**
 * After a start with --allow-clock-behind: says loudly, at start and again once the clock has
 * caught up, that the log's timestamps are held at the last ones it issued meanwhile.
 */
function warnIfClockBehind(lastCheckpointTime: number, logger: Logger): void {
  const behind = lastCheckpointTime - Math.floor(Date.now() / 1000);
  if (behind <= 0) return;
  const until = new Date(lastCheckpointTime * 1000).toISOString();
  logger.warn(
    `WARNING: the clock is ${behind} s behind the last checkpoint's time (${until}); started anyway (--allow-clock-behind). Until the clock reaches ${until}, checkpoints keep that time and entries the last entry's timestamp (counting up within it): nothing goes below what was issued before.`,
  );
  // Checked once a minute (a timer of a year's milliseconds would overflow setTimeout).
  const check = setInterval(() => {
    if (Date.now() / 1000 < lastCheckpointTime + 1) return;
    clearInterval(check);
    logger.warn("the clock has caught up with the log's timestamps");
  }, 60_000);
  check.unref();
}

function readPolicy(path: string) {
  const text = readInput(path, "--witness-policy");
  try {
    return parsePolicy(text);
  } catch (e) {
    throw usageError(`--witness-policy ${path}: ${errorLine(e)}`);
  }
}

/** The explorer's bundle from dist/web/ (written by `npm run build`), if there. */
function readExplorer(): ExplorerAssets | undefined {
  const dir = new URL("../web/", import.meta.url);
  try {
    return {
      "index.html": readFileSync(new URL("index.html", dir), "utf8"),
      "app.js": readFileSync(new URL("app.js", dir), "utf8"),
      "app.css": readFileSync(new URL("app.css", dir), "utf8"),
    };
  } catch {
    return undefined;
  }
}

/**
 * Everything that can be checked before anything is created, so that a typo in a flag or a
 * file leaves no empty data directory (or new key) behind: names, files, the mirror, the port.
 */
async function preflight(opts: ServeOptions) {
  if (opts.origin !== undefined) checkKeyName(opts.origin, "--origin");
  const dedup = opts.dedup === undefined ? undefined : parseDedup(opts.dedup, "--dedup");
  const policy = opts.witnessPolicy === undefined ? undefined : readPolicy(opts.witnessPolicy);
  if (opts.stateMirror !== undefined) checkMirrorDir(opts.stateMirror);
  checkDataDirPath(opts.data, "--data");
  if (opts.store !== undefined) {
    try {
      describePostgresUrl(opts.store);
    } catch (e) {
      throw usageError((e as Error).message);
    }
  }
  const archive = await openArchiveBucket(opts);
  await checkCanListen(opts.host, opts.port);
  return { dedup, policy, archive };
}

/** How long a stop after a failure (lease lost, rollback check) may take before it is cut short. */
const STOP_DEADLINE_MS = 10_000;

export async function runServe(opts: ServeOptions): Promise<void> {
  const logger = processLogger("vellum", opts.logLevel);
  const warn = (message: string) => logger.warn(message);
  const dataDir = resolve(opts.data);
  const port = opts.port;
  const { dedup, policy, archive } = await preflight(opts);
  const files = openDataDir(dataDir, {
    ...(opts.origin === undefined ? {} : { origin: opts.origin }),
    warn,
  });
  // With the embedded store, LevelDB's lock on DATA/db keeps a second server out.
  if (opts.store !== undefined) lockDataDir(dataDir);
  const markers = readMarkers(dataDir, opts.stateMirror);
  for (const notice of markers.notices) logger.info(notice);
  let stop: ((signal: string, code?: number, deadlineMs?: number) => Promise<void>) | undefined;
  let stopping = false;
  let store: ServerStore;
  try {
    store = await openServerStore({
      dbPath: files.dbPath,
      entriesPath: files.entriesPath,
      url: opts.store,
      origin: files.origin,
      logger,
      standBy: async (writerUrl) => {
        const proxy = await startStandbyProxy({
          host: opts.host,
          port: opts.port,
          writerUrl,
          logger,
          ...(archive === undefined ? {} : { fullTiles: fullTilesFrom(archive.bucket) }),
        });
        logger.warn(
          `standing by: forwarding requests on http://${opts.host}:${proxy.port} to the writer until this server takes over`,
        );
        return async () => {
          await proxy.close();
          return proxy.port;
        };
      },
      onLeaseLost: (why) => {
        logger.error(`${why}; stopping (nothing more is written by this server)`);
        // Nothing it writes now can land (the fence): a short stop, whatever still hangs.
        void stop?.("the writer lease was lost", EXIT_IO, 2_000);
      },
    });
  } catch (e) {
    if (isVellumError(e, "LOCKED") || opts.store === undefined) throw e;
    throw new ExitError(EXIT_IO, `--store: ${(e as Error).message}`);
  }
  try {
    const db = store.db;
    const tokens = await TokenStore.open(db.namespace("tokens"), { logger });
    await ensureAdminToken(tokens, dataDir, logger);
    const metrics = new Metrics({ processMetrics: true, version: VERSION });
    // A marker that falls behind no longer guards against a rollback: the log stops acknowledging
    // entries (fail-stop, as for a failed write) until every marker holds its checkpoint again.
    let log: Log | undefined;
    let markerCaughtUp: (() => void) | undefined;
    const marker = new CheckpointMarker(markers.paths, {
      onFailure: (e) => {
        logger.error(
          `${e.message}; the rollback marker is behind the log until this succeeds (retrying)`,
        );
        if (markerCaughtUp === undefined && log !== undefined) {
          const caughtUp = new Promise<void>((resolve) => (markerCaughtUp = resolve));
          log.fail(e, () => caughtUp);
        }
      },
      onRecovered: () => {
        logger.info("the rollback marker is up to date again");
        markerCaughtUp?.();
        markerCaughtUp = undefined;
      },
    });
    const batchMaxEntries = opts.batchMaxEntries;
    const batchMaxAgeMs = opts.batchMaxAgeMs;
    const interval = opts.checkpointInterval;
    // Decoded tree tiles kept in memory (16 KiB each): proofs for entries in cached tiles cost
    // no storage read. 128 MiB holds every level-0 tile of a 2-million-entry log.
    const cacheMb = opts.cacheMb;
    // Full entry bundles kept in memory, bounded by bytes (a bundle is 10 KB to 16.8 MB).
    const bundleCacheMb = opts.bundleCacheMb;
    // Request bodies being read or handled, all requests together; at least one largest batch.
    const bodyBudgetMb = opts.bodyBudgetMb;
    let witnesses: WitnessCollector | undefined;
    const forArchive = new CheckpointsForArchive();
    let opened = false;
    let failedAfterOpen = false;
    const startCheck = (s: RollbackCheckStatus) => {
      if (s.state === "passed") {
        logger.info(`rollback check passed: ${s.detail}`);
      } else if (s.state === "checking") {
        const next = s.nextRoundMs === null ? "" : `; asking again in ${s.nextRoundMs / 1000} s`;
        logger.warn(`${s.detail}${next}`);
      } else if (opened) {
        // Proven behind after start (a witness that answered late): stop, as at start.
        logger.error(`${s.detail}`);
        failedAfterOpen = true;
        void stop?.("the rollback check failed", EXIT_EVIDENCE);
      } // before Log.open returned, its rejection says it (STATE_MISMATCH: the process exits 3)
    };
    if (policy !== undefined) {
      const timeoutMs = opts.witnessTimeoutMs;
      witnesses = new WitnessCollector(policy, {
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        logger,
        onRound: (r) => metrics.witnessRound.observe({ quorum: String(r.quorum) }, r.seconds),
      });
      logger.info(
        `publishing only checkpoints that meet the quorum "${policy.quorum}" of ${policy.witnesses.length} witness(es)`,
      );
    }
    // The index logs' and the access log's own collectors (same policy; each log's witnessing
    // runs on its own).
    const otherCollector = (p: NonNullable<typeof policy>) =>
      new WitnessCollector(p, {
        ...(opts.witnessTimeoutMs === undefined ? {} : { timeoutMs: opts.witnessTimeoutMs }),
        logger,
      });
    const metricHooks = logMetricHooks(metrics, logger);
    log = await Log.open({
      ...(witnesses === undefined ? {} : { witnesses }),
      origin: files.origin,
      seed: files.seed,
      ...(await store.logPlace("log")),
      ...(markers.lastPublished === undefined ? {} : { lastPublished: markers.lastPublished }),
      remembered: markers.remembered,
      onStartCheck: startCheck,
      ...(batchMaxEntries === undefined ? {} : { batchMaxEntries }),
      ...(batchMaxAgeMs === undefined ? {} : { batchMaxAgeMs }),
      ...(interval === undefined ? {} : { checkpointIntervalMs: interval * 1000 }),
      ...(dedup === undefined ? {} : { dedup }),
      onDedupChange: (message) => logger.info(message),
      cachedTiles: Math.floor((cacheMb * 1024) / 16),
      bundleCacheBytes: bundleCacheMb * 1024 * 1024,
      allowClockBehind: opts.allowClockBehind,
      onCheckpoint: (cp) => {
        marker.update(cp);
        if (archive !== undefined) forArchive.notify(cp);
      },
      ...metricHooks,
      onFailure: (error, event) => {
        metricHooks.onFailure(error, event);
        const what =
          event.kind === "failed"
            ? "stopped acknowledging entries after a storage failure; recovering"
            : event.kind === "retry"
              ? `recovery attempt ${event.attempt} failed; retrying`
              : "cannot recover: an operator must look at the data and restart";
        logger.error({ class: event.class, event: event.kind }, `${what}: ${error.message}`);
      },
      onRecovered: (ms) =>
        logger.info(`storage recovered after ${Math.round(ms)} ms; acknowledging again`),
      onBatchUndone: (from, to) =>
        logger.warn(
          `the last batch (entries ${to} to ${from - 1}) was stored without its leaves (a crash or failure between its two writes); it was never acknowledged and was taken back out: the log resumes at size ${to}`,
        ),
    });
    opened = true;
    // Both markers hold the stored checkpoint from the start (a new mirror, or a DATA/checkpoint
    // that lagged behind the database when the last run ended). Only once open: then it covers the
    // whole stored tree, which contains every marker's checkpoint, so no marker goes backwards.
    if (log.status === "open") marker.update(log.checkpoint);
    warnIfClockBehind(log.checkpoint.time, logger);
    logGauges(metrics, log);
    const archiver =
      archive === undefined
        ? undefined
        : await forArchive.start(log, archive, db.namespace("archive"), metrics, logger);
    const index = opts.index
      ? await openServerIndex({
          dataDir,
          place: await store.logPlace("index-log"),
          log,
          origin: files.origin,
          seed: files.seed,
          ...(policy === undefined
            ? {}
            : {
                witnesses: otherCollector(policy),
              }),
          ...(opts.indexIntervalMs === undefined
            ? {}
            : { revisionIntervalMs: opts.indexIntervalMs }),
          logger,
        })
      : undefined;
    if (index?.indexer !== undefined) {
      const indexer = index.indexer;
      metrics.gauge(
        "vellum_index_lag_entries",
        "Entries of the log the verifiable index does not cover yet.",
        () => indexer.lag,
      );
      metrics.gauge(
        "vellum_index_revisions",
        "Revisions in the index log.",
        () => index.indexLog.size,
      );
    }
    const access = opts.accessLog
      ? await openServerAccessLog({
          dataDir,
          origin: files.origin,
          store,
          witnesses: policy === undefined ? undefined : () => otherCollector(policy),
          index: opts.index,
          ...(opts.indexIntervalMs === undefined ? {} : { indexIntervalMs: opts.indexIntervalMs }),
          logger,
        })
      : undefined;
    const accessLog = access?.accessLog;
    const accessIndex = access?.accessIndex;
    const explorer = readExplorer();
    if (explorer === undefined) {
      logger.warn("the explorer is not built (dist/web/ is missing: npm run build); / answers 404");
    }
    const app = createApp({
      log,
      tokens,
      ...(accessLog === undefined ? {} : { accessLog }),
      ...(accessIndex === undefined ? {} : { accessIndex }),
      publicReads: opts.public,
      metrics,
      logger,
      bodyBudgetBytes: bodyBudgetMb * 1024 * 1024,
      ...(index === undefined ? {} : { index }),
      ...(explorer === undefined ? {} : { explorer }),
    });

    // Slow or stalled uploads are cut off rather than holding a connection forever. Node checks
    // these timeouts only every connectionsCheckingInterval (30 s by default), which let a
    // slow-header connection live 36-41 s against the documented 10 s: checked every second here.
    const serverOptions = {
      requestTimeout: 30_000,
      headersTimeout: 10_000,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: 1_000,
    };
    const listenPort = store.standbyPort ?? port;
    const server = serve(
      { fetch: app.fetch, port: listenPort, hostname: opts.host, serverOptions },
      (info) => {
        // Standing-by servers forward to this address (PostgreSQL; nothing to do on LevelDB).
        const advertised =
          opts.advertiseUrl ??
          `http://${opts.host === "0.0.0.0" || opts.host === "::" ? hostname() : opts.host}:${info.port}`;
        store
          .advertise(advertised)
          .catch((e) =>
            logger.error(`advertising ${advertised} to standing-by servers: ${e.message}`),
          );
        logger.info(
          { origin: files.origin, size: log.size, url: `http://${opts.host}:${info.port}` },
          `log "${files.origin}" (${log.size} entries) serving on http://${opts.host}:${info.port}`,
        );
        logger.info(
          `data in ${dataDir}, state in ${store.description}; verifier key (also in log.vkey): ${files.verifierKey}`,
        );
        logger.info(
          log.dedup === "key"
            ? "deduplicating by idempotency key only: identical payloads are distinct entries"
            : "deduplicating by payload: a payload already in the log returns the original entry",
        );
      },
    );
    // The port was free at the start-up check; if another process took it since: one line, the
    // log closed cleanly, exit 4 (I/O).
    server.once("error", (e) => {
      logger.error(listenError(e, opts.host, port).message);
      void stop?.("could not listen", EXIT_IO);
    });

    stop = async (signal: string, code = 0, deadlineMs = STOP_DEADLINE_MS) => {
      if (stopping) return;
      stopping = true;
      // Only an open log signs a final checkpoint (not one still checking with its witnesses).
      const final =
        code === 0 && log.status === "open"
          ? "draining and signing a final checkpoint"
          : "stopping";
      logger.info(`${signal}: ${final}`);
      // Stopping on a failure must end even if a store no longer answers.
      if (code !== 0) {
        setTimeout(() => {
          logger.error(`still stopping after ${deadlineMs} ms (${signal}); exiting now`);
          logger.flush();
          process.exit(code);
        }, deadlineMs).unref();
      }
      await new Promise<void>((done) => server.close(() => done()));
      await index
        ?.close()
        .catch((e) => logger.error({ err: e }, `closing the index: ${e.message}`));
      await accessIndex
        ?.close()
        .catch((e) => logger.error({ err: e }, `closing the access index: ${e.message}`));
      await archiver?.close();
      archive?.bucket.close();
      await accessLog?.close();
      await log.close();
      await marker.flush();
      await store.close();
      logger.info(`stopped at size ${log.size}`);
      logger.flush();
      process.exit(code);
    };
    if (failedAfterOpen) void stop("the rollback check failed", EXIT_EVIDENCE);
    process.on("SIGINT", () => void stop?.("SIGINT"));
    process.on("SIGTERM", () => void stop?.("SIGTERM"));
  } catch (e) {
    // A start that fails gives the writer lease back at once (a standby need not wait it out).
    if (!stopping) await store.close().catch(() => undefined);
    throw e;
  }
}

export function registerServe(program: Command): void {
  const command = program
    .command("serve")
    .description(
      "run the log server (LevelDB in a local data folder; key and admin token made on first start)",
    );
  addSettings(command, SERVE_SETTINGS)
    .addHelpText(
      "after",
      `\nExample:\n  npx vellum serve --data ./vellum-data --port 6962\n  curl -s http://127.0.0.1:6962/checkpoint\n${exitCodesHelp([EXIT_OK, EXIT_USAGE, EXIT_EVIDENCE, EXIT_IO])}`,
    )
    .action(async (flags: Record<string, unknown>) => {
      const resolved = resolveSettings(SERVE_SETTINGS, flags);
      if (flags.printConfig === true) {
        process.stdout.write(printConfig(SERVE_SETTINGS, resolved));
        return;
      }
      await runServe(asOptions<ServeOptions>(resolved));
    });
}
