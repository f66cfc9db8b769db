/**
 * `vellum serve`: the log server on an embedded default. On first start the data directory gets
 * the log's key (0600), its verifier key, a LevelDB database and an admin token (0600); later
 * starts check them. SIGINT/SIGTERM stop it cleanly: stop accepting connections, drain the queue,
 * sign a final checkpoint, close the database.
 */
import { closeSync, fchmodSync, openSync, readFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import { parsePolicy } from "../core/policy.js";
import { Log } from "../log/log.js";
import type { RollbackCheckStatus } from "../log/rollback-check.js";
import { WitnessCollector } from "../log/witnessing.js";
import { createApp } from "../server/app.js";
import { Metrics } from "../server/metrics.js";
import { TokenStore } from "../server/tokens.js";
import { openLevelDatabase } from "../storage/level.js";
import { openDataDir } from "./datadir.js";
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
  stateMirror?: string;
}

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

export async function runServe(opts: ServeOptions): Promise<void> {
  const dataDir = resolve(opts.data);
  const port = int(opts.port, "--port", 0, 65535)!;
  const files = openDataDir(dataDir, opts.origin === undefined ? {} : { origin: opts.origin });
  const markers = readMarkers(dataDir, opts.stateMirror);
  for (const notice of markers.notices) console.log(`vellum: ${notice}`);
  const db = await openLevelDatabase(files.dbPath);
  const tokens = await TokenStore.open(db.namespace("tokens"));
  // On first start, and whenever every admin token has been revoked (restarting the server is
  // then the way back in: whoever can restart it can read DATA anyway).
  if (!tokens.hasActiveAdmin) {
    const first = tokens.count === 0;
    const { token } = await tokens.create(first ? "admin (first start)" : "admin (restart)", [
      "admin",
      "append",
      "read",
    ]);
    const path = join(dataDir, "admin.token");
    const fd = openSync(path, "w", 0o600);
    try {
      fchmodSync(fd, 0o600); // the mode given to openSync applies only to a new file
      writeSync(fd, `${token}\n`);
    } finally {
      closeSync(fd);
    }
    console.log(
      first
        ? `vellum: created an admin token with every scope in ${path} (mode 0600)`
        : `vellum: no admin token was left (all revoked): created a new one in ${path} (mode 0600)`,
    );
  }
  const metrics = new Metrics();
  // A marker that falls behind no longer guards against a rollback: the log should stop
  // acknowledging entries meanwhile (to be wired to the log's halt/resume).
  const marker = new CheckpointMarker(markers.paths, {
    onFailure: (e) =>
      console.error(
        `vellum: ${e.message}; the rollback marker is behind the log until this succeeds (retrying)`,
      ),
    onRecovered: () => console.log(`vellum: the rollback marker is up to date again`),
  });
  const batchMaxEntries = int(opts.batchMaxEntries, "--batch-max-entries", 1, 100_000);
  const batchMaxAgeMs = int(opts.batchMaxAgeMs, "--batch-max-age-ms", 0, 10_000);
  const interval = int(opts.checkpointInterval, "--checkpoint-interval", 1, 86_400);
  // Decoded tree tiles kept in memory (16 KiB each): proofs for entries in cached tiles cost
  // no storage read. 128 MiB holds every level-0 tile of a 2-million-entry log.
  const cacheMb = int(opts.cacheMb, "--cache-mb", 16, 65_536) ?? 128;
  let witnesses: WitnessCollector | undefined;
  let opened = false;
  let stop: ((signal: string, code?: number) => Promise<void>) | undefined;
  let failedAfterOpen = false;
  const startCheck = (s: RollbackCheckStatus) => {
    if (s.state === "passed") {
      console.log(`vellum: rollback check passed: ${s.detail}`);
    } else if (s.state === "checking") {
      const next = s.nextRoundMs === null ? "" : `; asking again in ${s.nextRoundMs / 1000} s`;
      console.error(`vellum: ${s.detail}${next}`);
    } else if (opened) {
      // Proven behind after start (a witness that answered late): stop, as at start.
      console.error(`vellum: ${s.detail}`);
      failedAfterOpen = true;
      void stop?.("the rollback check failed", 1);
    } // before Log.open returned, its rejection says it (and the process exits 1)
  };
  if (opts.witnessPolicy !== undefined) {
    const policy = parsePolicy(readFileSync(opts.witnessPolicy));
    const timeoutMs = int(opts.witnessTimeoutMs, "--witness-timeout-ms", 1, 60_000);
    witnesses = new WitnessCollector(policy, timeoutMs === undefined ? {} : { timeoutMs });
    console.log(
      `vellum: publishing only checkpoints that meet the quorum "${policy.quorum}" of ${policy.witnesses.length} witness(es)`,
    );
  }
  const log = await Log.open({
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
    cachedTiles: Math.floor((cacheMb * 1024) / 16),
    onCheckpoint: (cp) => marker.update(cp),
    onBatch: (b) => {
      metrics.batchSize.observe(b.entries);
      metrics.sequencing.observe(b.ms / 1000);
    },
  });
  opened = true;
  // Both markers hold the stored checkpoint from the start (a new mirror, or a DATA/checkpoint
  // that lagged behind the database when the last run ended). Only once open: then it covers the
  // whole stored tree, which contains every marker's checkpoint, so no marker goes backwards.
  if (log.status === "open") marker.update(log.checkpoint);
  metrics.gauge("vellum_tree_size", "Entries in the latest published checkpoint.", () => log.size);
  metrics.gauge("vellum_queue_entries", "Entries waiting to be sequenced.", () => log.queueLength);
  const app = createApp({ log, tokens, publicReads: opts.public === true, metrics });

  const server = serve({ fetch: app.fetch, port, hostname: opts.host }, (info) => {
    console.log(
      `vellum: log "${files.origin}" (${log.size} entries) serving on http://${opts.host}:${info.port}`,
    );
    console.log(
      `vellum: data in ${dataDir}; verifier key (also in log.vkey): ${files.verifierKey}`,
    );
  });
  // Slow or stalled uploads are cut off rather than holding a connection forever.
  const http = server as unknown as {
    requestTimeout: number;
    headersTimeout: number;
    keepAliveTimeout: number;
  };
  http.requestTimeout = 30_000;
  http.headersTimeout = 10_000;
  http.keepAliveTimeout = 5_000;

  let stopping = false;
  stop = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    // Only an open log signs a final checkpoint (not one still checking with its witnesses).
    const final =
      code === 0 && log.status === "open" ? "draining and signing a final checkpoint" : "stopping";
    console.log(`vellum: ${signal}: ${final}`);
    await new Promise<void>((done) => server.close(() => done()));
    await log.close();
    await marker.flush();
    await db.close();
    console.log(`vellum: stopped at size ${log.size}`);
    process.exit(code);
  };
  if (failedAfterOpen) void stop("the rollback check failed", 1);
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
      "--cache-mb <mib>",
      "memory for cached tree tiles, used by proofs (env VELLUM_CACHE_MB; default 128)",
      process.env.VELLUM_CACHE_MB,
    )
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum serve --data ./vellum-data --port 6962\n  curl -s http://127.0.0.1:6962/checkpoint\n",
    )
    .action(async (opts: ServeOptions) => {
      await runServe(opts);
    });
}
