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
import { parseDedup } from "../log/dedup.js";
import { Log } from "../log/log.js";
import type { SignedCheckpoint } from "../log/signer.js";
import { WitnessCollector } from "../log/witnessing.js";
import { writeFileDurablyAsync } from "../platform/durable-file.js";
import { createApp } from "../server/app.js";
import { Metrics } from "../server/metrics.js";
import { TokenStore } from "../server/tokens.js";
import { storageFailureClass } from "../storage/failure.js";
import { openLevelDatabase } from "../storage/level.js";
import { openDataDir } from "./datadir.js";

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
  dedup?: string;
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

/**
 * Remembers the last signed checkpoint outside the database, at most once a second, with
 * asynchronous I/O (a synchronous fsync here stalled every request while it ran).
 */
function checkpointMarker(dir: string) {
  const path = join(dir, "checkpoint");
  let pending: SignedCheckpoint | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    timer = undefined;
    const cp = pending;
    pending = undefined;
    if (cp === undefined) return writing;
    writing = writing
      .then(() => writeFileDurablyAsync(path, cp.note))
      .catch((e) => {
        console.error(`vellum: could not update ${path}: ${(e as Error).message}`);
      });
    return writing;
  };
  return {
    update(cp: SignedCheckpoint) {
      pending = cp;
      timer ??= setTimeout(() => void flush(), 1000);
    },
    flush(): Promise<void> {
      if (timer !== undefined) clearTimeout(timer);
      return flush();
    },
  };
}

export async function runServe(opts: ServeOptions): Promise<void> {
  const dataDir = resolve(opts.data);
  const port = int(opts.port, "--port", 0, 65535)!;
  const dedup = opts.dedup === undefined ? undefined : parseDedup(opts.dedup, "--dedup");
  const files = openDataDir(dataDir, opts.origin === undefined ? {} : { origin: opts.origin });
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
  const marker = checkpointMarker(dataDir);
  const batchMaxEntries = int(opts.batchMaxEntries, "--batch-max-entries", 1, 100_000);
  const batchMaxAgeMs = int(opts.batchMaxAgeMs, "--batch-max-age-ms", 0, 10_000);
  const interval = int(opts.checkpointInterval, "--checkpoint-interval", 1, 86_400);
  // Decoded tree tiles kept in memory (16 KiB each): proofs for entries in cached tiles cost
  // no storage read. 128 MiB holds every level-0 tile of a 2-million-entry log.
  const cacheMb = int(opts.cacheMb, "--cache-mb", 16, 65_536) ?? 128;
  let witnesses: WitnessCollector | undefined;
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
    ...(files.lastPublished === undefined ? {} : { lastPublished: files.lastPublished }),
    ...(batchMaxEntries === undefined ? {} : { batchMaxEntries }),
    ...(batchMaxAgeMs === undefined ? {} : { batchMaxAgeMs }),
    ...(interval === undefined ? {} : { checkpointIntervalMs: interval * 1000 }),
    ...(dedup === undefined ? {} : { dedup }),
    onDedupChange: (message) => console.log(`vellum: ${message}`),
    cachedTiles: Math.floor((cacheMb * 1024) / 16),
    onCheckpoint: (cp) => marker.update(cp),
    onBatch: (b) => {
      metrics.batchSize.observe(b.entries);
      metrics.sequencing.observe(b.ms / 1000);
    },
    onFailure: (error, event) => {
      metrics.storageFailures.inc(storageFailureClass(error));
      const what =
        event.kind === "failed"
          ? "stopped acknowledging entries after a storage failure; recovering"
          : event.kind === "retry"
            ? `recovery attempt ${event.attempt} failed; retrying`
            : "cannot recover: an operator must look at the data and restart";
      console.error(`vellum: ${what}: ${error.message}`);
    },
    onRecovered: (ms) =>
      console.log(`vellum: storage recovered after ${Math.round(ms)} ms; acknowledging again`),
  });
  metrics.gauge(
    "vellum_storage_failed",
    "1 while the log acknowledges nothing after a storage failure, else 0.",
    () => (log.status === "failed" ? 1 : 0),
  );
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
    console.log(
      log.dedup === "key"
        ? "vellum: deduplicating by idempotency key only: identical payloads are distinct entries"
        : "vellum: deduplicating by payload: a payload already in the log returns the original entry",
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
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`vellum: ${signal}: draining and signing a final checkpoint`);
    await new Promise<void>((done) => server.close(() => done()));
    await log.close();
    await marker.flush();
    await db.close();
    console.log(`vellum: stopped at size ${log.size}`);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
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
      "--dedup <rule>",
      'what makes a resubmission the same entry: "key" (only the same Idempotency-Key; the default for new logs) or "payload" (also identical bytes). Stored with the log; a log from before this setting keeps "payload"; "payload" to "key" is allowed once, never back (env VELLUM_DEDUP)',
      process.env.VELLUM_DEDUP,
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
