/**
 * `vellum witness`: a C2SP tlog-witness server. On first start DATA gets the witness key
 * (type 0x04, mode 0600) and DATA/witness.vkey; trusted logs come from --trust (a key's text or a
 * file of keys, one per line, as every key option takes them: src/cli/keys-arg.ts) and from a
 * config file (`log <vkey>` lines, as in tlog-policy, or bare verifier keys; `#` comments), both
 * re-read when the config file changes or on SIGHUP, without a restart.
 */
import { readFileSync, watchFile } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { serve } from "@hono/node-server";
import type { Command } from "commander";
import {
  type NoteVerifier,
  parseVerifierKey,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  verifierFromKey,
} from "../core/keys.js";
import { createLogger } from "../platform/logger.js";
import { openLevelDatabase } from "../storage/level.js";
import { createWitnessApp } from "../witness/app.js";
import { WitnessMetrics } from "../witness/metrics.js";
import { type TrustedLogs, Witness } from "../witness/witness.js";
import { openKey } from "./datadir.js";
import { readKeysArg } from "./keys-arg.js";

export const DEFAULT_WITNESS_PORT = 6963;

/** The running version (package.json), for vellum_build_info. */
const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

/**
 * Slow or stalled clients are cut off rather than holding a connection (spec/witness.md): the
 * whole header within 10 s, the whole request within 30 s, an idle keep-alive connection closed
 * after 5 s. Node enforces the first two only when it checks its connections, every 30 s by
 * default (so a slow header was cut after 36-41 s): checking every second cuts it within 11 s.
 */
export const WITNESS_HTTP_TIMEOUTS = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
} as const;

interface WitnessOptions {
  data: string;
  port: string;
  host: string;
  name?: string;
  trust: string[];
  config?: string;
  logLevel?: string;
}

/** Builds the trusted-log map from verifier keys (type 0x01; the key name is the origin). */
export function trustedLogs(vkeys: readonly string[]): TrustedLogs {
  const map = new Map<string, NoteVerifier[]>();
  for (const vkey of vkeys) {
    const parsed = parseVerifierKey(vkey);
    if (parsed.type !== SIG_TYPE_ED25519) {
      throw new Error(`trusted log key ${parsed.name} must be an Ed25519 note key (type 0x01)`);
    }
    map.set(parsed.name, [...(map.get(parsed.name) ?? []), verifierFromKey(vkey)]);
  }
  return map;
}

/** Reads a trust file: `log <vkey> [<url>]` lines or bare verifier keys; `#` comments. */
export function readTrustFile(path: string): string[] {
  const keys: string[] = [];
  for (const [i, raw] of readFileSync(path, "utf8").split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const vkey = fields[0] === "log" ? fields[1] : fields.length === 1 ? fields[0] : undefined;
    if (vkey === undefined)
      throw new Error(`${path}:${i + 1}: expected "log <vkey>" or a verifier key`);
    keys.push(vkey);
  }
  return keys;
}

async function runWitness(opts: WitnessOptions): Promise<void> {
  const logger = createLogger({ name: "vellum witness", level: opts.logLevel });
  const dataDir = resolve(opts.data);
  const key = openKey(dataDir, "witness", SIG_TYPE_COSIGNATURE, {
    ...(opts.name === undefined ? {} : { name: opts.name }),
    defaultName: `${hostname().replace(/[^A-Za-z0-9.-]/g, "-") || "localhost"}/witness`,
    what: "witness",
    warn: (message) => logger.warn(message),
  });
  const load = () =>
    trustedLogs([
      ...opts.trust.flatMap((v) => readKeysArg(v, "--trust", SIG_TYPE_ED25519)),
      ...(opts.config ? readTrustFile(opts.config) : []),
    ]);
  const db = await openLevelDatabase(join(dataDir, "db"));
  const atLimit = new Set<string>();
  const witness = new Witness({
    name: key.name,
    seed: key.seed,
    kv: db.namespace("witness"),
    trusted: load(),
    logger,
    onEvidence: (e, outcome) => {
      // Each record is logged once; a log that keeps sending conflicts past the bound is named
      // once per process, not once per request.
      if (outcome === "duplicate" || (outcome === "limit" && atLimit.has(e.origin))) return;
      if (outcome === "limit") atLimit.add(e.origin);
      const what = {
        kept: "kept as evidence",
        limit: `not kept: this log already has ${witness.evidenceLimits.perLog} evidence records`,
        "too-large": `not kept: the record exceeds ${witness.evidenceLimits.maxBytes} bytes`,
      }[outcome];
      logger.warn(
        { origin: e.origin, kind: e.kind, outcome },
        `${e.origin} misbehaved (${e.kind}): ${e.reason} (${what})`,
      );
    },
  });
  const reload = (why: string) => {
    try {
      witness.setTrusted(load());
      logger.info(`${why}: trusting ${witness.trustedOrigins.length} log(s)`);
    } catch (e) {
      logger.error(`${why}: kept the previous trust list: ${(e as Error).message}`);
    }
  };
  if (opts.config)
    watchFile(opts.config, { interval: 1000 }, () => reload(`${opts.config} changed`));
  process.on("SIGHUP", () => reload("SIGHUP"));

  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0-65535, got "${opts.port}"`);
  const server = serve(
    {
      fetch: createWitnessApp(witness, {
        logger,
        metrics: new WitnessMetrics(witness, { processMetrics: true, version: VERSION }),
      }).fetch,
      port,
      hostname: opts.host,
      serverOptions: WITNESS_HTTP_TIMEOUTS,
    },
    (info) => {
      logger.info({ name: key.name }, `"${key.name}" serving on http://${opts.host}:${info.port}`);
      logger.info(`verifier key (also in witness.vkey): ${key.verifierKey}`);
      logger.info(
        `trusting ${witness.trustedOrigins.length} log(s): ${witness.trustedOrigins.join(", ")}`,
      );
    },
  );
  const stop = () => {
    witness.close();
    server.close(
      () =>
        void db.close().then(() => {
          logger.flush();
          process.exit(0);
        }),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

export function registerWitness(program: Command): void {
  program
    .command("witness")
    .description("run a C2SP tlog-witness that cosigns checkpoints of the logs it trusts")
    .option(
      "--data <dir>",
      "data directory (witness key and state) (env VELLUM_WITNESS_DATA)",
      process.env.VELLUM_WITNESS_DATA ?? "vellum-witness",
    )
    .option(
      "--port <n>",
      "TCP port (env VELLUM_WITNESS_PORT)",
      process.env.VELLUM_WITNESS_PORT ?? String(DEFAULT_WITNESS_PORT),
    )
    .option(
      "--host <addr>",
      "address to listen on (env VELLUM_WITNESS_HOST)",
      process.env.VELLUM_WITNESS_HOST ?? "127.0.0.1",
    )
    .option(
      "--name <name>",
      "the witness's key name on first start (default <hostname>/witness) (env VELLUM_WITNESS_NAME)",
      process.env.VELLUM_WITNESS_NAME,
    )
    .option(
      "--trust <vkey|file>",
      "a log's verifier key to trust: its text, or a file of keys one per line (e.g. DATA/log.vkey); repeatable",
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option(
      "--log-level <level>",
      "debug, info (one line per request), warn, error or silent (env VELLUM_LOG_LEVEL; default info)",
      process.env.VELLUM_LOG_LEVEL,
    )
    .option(
      "--config <file>",
      "file of trusted log keys (`log <vkey>` lines), reloaded on change (env VELLUM_WITNESS_CONFIG)",
      process.env.VELLUM_WITNESS_CONFIG,
    )
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum witness --data ./w1 --port 6963 --name witness.example/w1 --trust vellum-data/log.vkey\n",
    )
    .action(async (opts: WitnessOptions) => {
      await runWitness(opts);
    });
}
