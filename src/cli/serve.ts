/**
 * `vellum serve`: the log server on an embedded default. On first start the data directory gets
 * the log's key (0600), its verifier key, a LevelDB database and an admin token (0600); later
 * starts check them. SIGINT/SIGTERM stop it cleanly: stop accepting connections, drain the queue,
 * sign a final checkpoint, close the database.
 */
import { closeSync, existsSync, fchmodSync, openSync, readFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import type { Logger } from "../core/logger.js";
import { parsePolicy } from "../core/policy.js";
import { parseDedup } from "../log/dedup.js";
import { Log } from "../log/log.js";
import type { RollbackCheckStatus } from "../log/rollback-check.js";
import { WitnessCollector } from "../log/witnessing.js";
import { createLogger } from "../platform/logger.js";
import { createApp } from "../server/app.js";
import { logMetricHooks, Metrics } from "../server/metrics.js";
import { TokenStore } from "../server/tokens.js";
import { openLevelDatabase } from "../storage/level.js";
import { openDataDir, restrictMode } from "./datadir.js";
import { EXIT_EVIDENCE } from "./exit-codes.js";
import { CheckpointMarker, readMarkers } from "./marker.js";

export const DEFAULT_PORT = 6962;
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_DATA = "vellum-data";

export interface ServeOptions {
  data: string;
  port: string;
  host: string;
  origin?: string;
  public?: boolean;
  batchMaxEntries?: string;
  batchMaxAgeMs?: string;
  checkpointInterval?: string;
  witnessPolicy?: string;
  witnessTimeoutMs?: string;
  cacheMb?: string;
  bundleCacheMb?: string;
  bodyBudgetMb?: string;
  allowClockBehind?: boolean;
  stateMirror?: string;
  dedup?: string;
  logLevel?: string;
}

/** The running version (package.json), for vellum_build_info. */
const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

function int(
  value: string | undefined,
  what: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${what} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
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

export async function runServe(opts: ServeOptions): Promise<void> {
  const logger = createLogger({ name: "vellum", level: opts.logLevel });
  const dataDir = resolve(opts.data);
  const port = int(opts.port, "--port", 0, 65535)!;
  const dedup = opts.dedup === undefined ? undefined : parseDedup(opts.dedup, "--dedup");
  const warn = (message: string) => logger.warn(message);
  const files = openDataDir(dataDir, {
    ...(opts.origin === undefined ? {} : { origin: opts.origin }),
    warn,
  });
  const markers = readMarkers(dataDir, opts.stateMirror);
  for (const notice of markers.notices) logger.info(notice);
  const db = await openLevelDatabase(files.dbPath);
  const tokens = await TokenStore.open(db.namespace("tokens"), { logger });
  // A token file others can read (copied in, or its mode changed): made private, with a warning.
  const tokenPath = join(dataDir, "admin.token");
  if (existsSync(tokenPath)) restrictMode(tokenPath, 0o600, warn);
  // On first start, and whenever every admin token has been revoked (restarting the server is
  // then the way back in: whoever can restart it can read DATA anyway).
  if (!tokens.hasActiveAdmin) {
    const first = tokens.count === 0;
    const { token } = await tokens.create(first ? "admin (first start)" : "admin (restart)", [
      "admin",
      "append",
      "read",
    ]);
    const fd = openSync(tokenPath, "w", 0o600);
    try {
      fchmodSync(fd, 0o600); // the mode given to openSync applies only to a new file
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    logger.info(
      first
        ? `created an admin token with every scope in ${tokenPath} (mode 0600)`
        : `no admin token was left (all revoked): created a new one in ${tokenPath} (mode 0600)`,
    );
  }
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
  const batchMaxEntries = int(opts.batchMaxEntries, "--batch-max-entries", 1, 100_000);
  const batchMaxAgeMs = int(opts.batchMaxAgeMs, "--batch-max-age-ms", 0, 10_000);
  const interval = int(opts.checkpointInterval, "--checkpoint-interval", 1, 86_400);
  // Decoded tree tiles kept in memory (16 KiB each): proofs for entries in cached tiles cost
  // no storage read. 128 MiB holds every level-0 tile of a 2-million-entry log.
  const cacheMb = int(opts.cacheMb, "--cache-mb", 16, 65_536) ?? 128;
  // Full entry bundles kept in memory, bounded by bytes (a bundle is 10 KB to 16.8 MB).
  const bundleCacheMb = int(opts.bundleCacheMb, "--bundle-cache-mb", 0, 65_536) ?? 64;
  // Request bodies being read or handled, all requests together; at least one largest batch.
  const bodyBudgetMb = int(opts.bodyBudgetMb, "--body-budget-mb", 16, 65_536) ?? 64;
  let witnesses: WitnessCollector | undefined;
  let opened = false;
  let stop: ((signal: string, code?: number) => Promise<void>) | undefined;
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
  if (opts.witnessPolicy !== undefined) {
    const policy = parsePolicy(readFileSync(opts.witnessPolicy));
    const timeoutMs = int(opts.witnessTimeoutMs, "--witness-timeout-ms", 1, 60_000);
    witnesses = new WitnessCollector(policy, {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      logger,
      onRound: (r) => metrics.witnessRound.observe({ quorum: String(r.quorum) }, r.seconds),
    });
    logger.info(
      `publishing only checkpoints that meet the quorum "${policy.quorum}" of ${policy.witnesses.length} witness(es)`,
    );
  }
  const metricHooks = logMetricHooks(metrics, logger);
  log = await Log.open({
    ...(witnesses === undefined ? {} : { witnesses }),
    origin: files.origin,
    seed: files.seed,
    kv: db.namespace("log"),
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
    allowClockBehind: opts.allowClockBehind === true,
    onCheckpoint: (cp) => marker.update(cp),
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
  });
  opened = true;
  // Both markers hold the stored checkpoint from the start (a new mirror, or a DATA/checkpoint
  // that lagged behind the database when the last run ended). Only once open: then it covers the
  // whole stored tree, which contains every marker's checkpoint, so no marker goes backwards.
  if (log.status === "open") marker.update(log.checkpoint);
  warnIfClockBehind(log.checkpoint.time, logger);
  metrics.gauge(
    "vellum_storage_failed",
    "1 while the log acknowledges nothing after a storage failure, else 0.",
    () => (log.status === "failed" ? 1 : 0),
  );
  metrics.gauge("vellum_tree_size", "Entries in the latest published checkpoint.", () => log.size);
  metrics.gauge("vellum_queue_entries", "Entries waiting to be sequenced.", () => log.queueLength);
  metrics.gauge(
    "vellum_checkpoint_age_seconds",
    "Seconds since the latest published checkpoint was signed (its timestamp).",
    () => Math.max(0, Date.now() / 1000 - log.checkpoint.time),
  );
  const app = createApp({
    log,
    tokens,
    publicReads: opts.public === true,
    metrics,
    logger,
    bodyBudgetBytes: bodyBudgetMb * 1024 * 1024,
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
  const server = serve({ fetch: app.fetch, port, hostname: opts.host, serverOptions }, (info) => {
    logger.info(
      { origin: files.origin, size: log.size, url: `http://${opts.host}:${info.port}` },
      `log "${files.origin}" (${log.size} entries) serving on http://${opts.host}:${info.port}`,
    );
    logger.info(`data in ${dataDir}; verifier key (also in log.vkey): ${files.verifierKey}`);
    logger.info(
      log.dedup === "key"
        ? "deduplicating by idempotency key only: identical payloads are distinct entries"
        : "deduplicating by payload: a payload already in the log returns the original entry",
    );
  });

  let stopping = false;
  stop = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    // Only an open log signs a final checkpoint (not one still checking with its witnesses).
    const final =
      code === 0 && log.status === "open" ? "draining and signing a final checkpoint" : "stopping";
    logger.info(`${signal}: ${final}`);
    await new Promise<void>((done) => server.close(() => done()));
    await log.close();
    await marker.flush();
    await db.close();
    logger.info(`stopped at size ${log.size}`);
    logger.flush();
    process.exit(code);
  };
  if (failedAfterOpen) void stop("the rollback check failed", EXIT_EVIDENCE);
  process.on("SIGINT", () => void stop?.("SIGINT"));
  process.on("SIGTERM", () => void stop?.("SIGTERM"));
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "run the log server (LevelDB in a local data folder; key and admin token made on first start)",
    )
    .option(
      "--data <dir>",
      "data directory (env VELLUM_DATA)",
      process.env.VELLUM_DATA ?? DEFAULT_DATA,
    )
    .option(
      "--port <n>",
      "TCP port (env VELLUM_PORT)",
      process.env.VELLUM_PORT ?? String(DEFAULT_PORT),
    )
    .option(
      "--host <addr>",
      "address to listen on (env VELLUM_HOST)",
      process.env.VELLUM_HOST ?? DEFAULT_HOST,
    )
    .option(
      "--origin <name>",
      "the log's origin on first start (env VELLUM_ORIGIN; default <hostname>/vellum)",
      process.env.VELLUM_ORIGIN,
    )
    .option(
      "--public",
      "serve entries and entry bundles without a token (env VELLUM_PUBLIC=1)",
      process.env.VELLUM_PUBLIC === "1",
    )
    .option(
      "--log-level <level>",
      "debug, info (one line per request), warn, error or silent (env VELLUM_LOG_LEVEL; default info)",
      process.env.VELLUM_LOG_LEVEL,
    )
    .option("--batch-max-entries <n>", "most entries per sequenced batch")
    .option("--batch-max-age-ms <ms>", "how long an idle log waits for more entries before a batch")
    .option("--checkpoint-interval <s>", "re-sign an idle log's checkpoint every s seconds")
    .option(
      "--witness-policy <file>",
      "C2SP tlog-policy file: witnesses (with URLs) and the quorum a checkpoint needs before it is published",
    )
    .option("--witness-timeout-ms <ms>", "how long to wait for each witness (default 2000)")
    .option(
      "--state-mirror <dir>",
      "an existing directory outside --data where a second copy of the rollback marker is kept (env VELLUM_STATE_MIRROR)",
      process.env.VELLUM_STATE_MIRROR,
    )
    .option(
      "--dedup <rule>",
      'what makes a resubmission the same entry: "key" (only the same Idempotency-Key; the default for new logs) or "payload" (also identical bytes). Stored with the log; a log from before this setting keeps "payload"; "payload" to "key" is allowed once, never back (env VELLUM_DEDUP)',
      process.env.VELLUM_DEDUP,
    )
    .option(
      "--cache-mb <mib>",
      "memory for cached tree tiles, used by proofs (env VELLUM_CACHE_MB; default 128)",
      process.env.VELLUM_CACHE_MB,
    )
    .option(
      "--bundle-cache-mb <mib>",
      "memory for cached entry bundles, by bytes (env VELLUM_BUNDLE_CACHE_MB; default 64; 0 turns it off)",
      process.env.VELLUM_BUNDLE_CACHE_MB,
    )
    .option(
      "--body-budget-mb <mib>",
      "most request-body bytes in flight, all requests together; past it 503 OVERLOADED (env VELLUM_BODY_BUDGET_MB; default 64, at least 16)",
      process.env.VELLUM_BODY_BUDGET_MB,
    )
    .option(
      "--allow-clock-behind",
      "start even if the clock is behind the last checkpoint; timestamps stay at the last issued until it catches up (env VELLUM_ALLOW_CLOCK_BEHIND=1)",
      process.env.VELLUM_ALLOW_CLOCK_BEHIND === "1",
    )
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum serve --data ./vellum-data --port 6962\n  curl -s http://127.0.0.1:6962/checkpoint\n",
    )
    .action(async (opts: ServeOptions) => {
      await runServe(opts);
    });
}
