/**
 * `vellum witness`: a C2SP tlog-witness server. On first start DATA gets the witness key
 * (type 0x04, mode 0600) and DATA/witness.vkey; trusted logs come from --trust (a key's text or a
 * file of keys, one per line, as every key option takes them: src/cli/keys-arg.ts) and from a
 * trust file (--trust-file: `log <vkey>` lines, as in tlog-policy, or bare verifier keys; `#`
 * comments), both re-read when the trust file changes or on SIGHUP, without a restart. Its
 * settings come from flags, VELLUM_WITNESS_* variables and a YAML --config file (config.ts).
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
import { openLevelDatabase } from "../storage/level.js";
import { createWitnessApp } from "../witness/app.js";
import { WitnessMetrics } from "../witness/metrics.js";
import { type TrustedLogs, Witness } from "../witness/witness.js";
import {
  addSettings,
  asOptions,
  printConfig,
  resolveSettings,
  type SettingsTable,
} from "./config.js";
import { checkDataDirPath, checkKeyName, openKey } from "./datadir.js";
import { EXIT_IO, EXIT_OK, EXIT_USAGE, exitCodesHelp } from "./exit-codes.js";
import { readKeysArg } from "./keys-arg.js";
import { checkCanListen, listenError } from "./listen.js";
import { checkMirrorDir } from "./marker.js";
import { processLogger, VERSION } from "./serve.js";
import { WitnessStateMirror } from "./witness-mirror.js";

export const DEFAULT_WITNESS_PORT = 6963;

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

/**
 * Every `vellum witness` setting, once: flag, environment variable (VELLUM_WITNESS_ + the name),
 * key in the --config file, default and check (src/cli/config.ts).
 */
export const WITNESS_SETTINGS: SettingsTable = {
  command: "witness",
  envPrefix: "VELLUM_WITNESS_",
  settings: [
    {
      name: "data",
      kind: "path",
      arg: "<dir>",
      help: "data directory (witness key and state)",
      default: "vellum-witness",
    },
    {
      name: "port",
      kind: "int",
      arg: "<n>",
      help: "TCP port (0: any free port)",
      default: DEFAULT_WITNESS_PORT,
      min: 0,
      max: 65535,
    },
    {
      name: "host",
      kind: "string",
      arg: "<addr>",
      help: "address to listen on",
      default: "127.0.0.1",
    },
    {
      name: "name",
      kind: "string",
      arg: "<name>",
      help: "the witness's key name on first start",
      defaultHelp: "<hostname>/witness",
    },
    {
      name: "trust",
      kind: "keys",
      arg: "<vkey|file>",
      help: "a log's verifier key to trust: its text, or a file of keys one per line (e.g. DATA/log.vkey)",
    },
    {
      name: "state-mirror",
      kind: "path",
      arg: "<dir>",
      help: "an existing directory outside --data where the witness keeps a copy of what it cosigned for each log, checked at start (rollback protection)",
    },
    {
      name: "trust-file",
      kind: "path",
      arg: "<file>",
      help: "file of trusted log keys (`log <vkey>` lines as in tlog-policy, or bare keys; `#` comments), re-read when it changes and on SIGHUP",
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

/** The settings, resolved and checked (src/cli/config.ts), as runWitness takes them. */
interface WitnessOptions {
  data: string;
  port: number;
  host: string;
  name?: string;
  trust?: readonly string[];
  trustFile?: string;
  stateMirror?: string;
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

/**
 * Runs the witness. `reread` resolves the settings again (flags, environment, the --config
 * file) when the trust list is reloaded: `trust` and `trust-file` take effect then; the other
 * settings only at a restart.
 */
async function runWitness(
  opts: WitnessOptions,
  reread: () => WitnessOptions = () => opts,
  configFile?: string,
): Promise<void> {
  const logger = processLogger("vellum witness", opts.logLevel);
  const dataDir = resolve(opts.data);
  const load = (o: WitnessOptions = opts) =>
    trustedLogs([
      ...(o.trust ?? []).flatMap((v) => readKeysArg(v, "--trust", SIG_TYPE_ED25519)),
      ...(o.trustFile ? readTrustFile(o.trustFile) : []),
    ]);
  // Checked before anything is created: a typo must not leave a new witness key behind.
  if (opts.name !== undefined) checkKeyName(opts.name, "--name");
  const trusted = load();
  checkDataDirPath(opts.data, "--data");
  const port = opts.port;
  await checkCanListen(opts.host, port);
  const key = openKey(dataDir, "witness", SIG_TYPE_COSIGNATURE, {
    ...(opts.name === undefined ? {} : { name: opts.name }),
    defaultName: `${hostname().replace(/[^A-Za-z0-9.-]/g, "-") || "localhost"}/witness`,
    what: "witness",
    warn: (message) => logger.warn(message),
  });
  const mirrorDir = opts.stateMirror;
  if (mirrorDir !== undefined) checkMirrorDir(mirrorDir);
  const db = await openLevelDatabase(join(dataDir, "db"));
  const mirrorOpened =
    mirrorDir === undefined
      ? undefined
      : WitnessStateMirror.open(mirrorDir, dataDir, (line) => logger.error(line));
  const atLimit = new Set<string>();
  const witness = new Witness({
    ...(mirrorOpened === undefined ? {} : { mirror: mirrorOpened.mirror }),
    name: key.name,
    seed: key.seed,
    kv: db.namespace("witness"),
    trusted,
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
      witness.setTrusted(load(reread()));
      logger.info(`${why}: trusting ${witness.trustedOrigins.length} log(s)`);
    } catch (e) {
      logger.error(`${why}: kept the previous trust list: ${(e as Error).message}`);
    }
  };
  const trustFile = opts.trustFile;
  for (const file of [trustFile, configFile]) {
    if (file) watchFile(file, { interval: 1000 }, () => reload(`${file} changed`));
  }
  process.on("SIGHUP", () => reload("SIGHUP"));
  if (mirrorOpened !== undefined) {
    // Before serving: a store behind what the mirror says was cosigned was restored or replaced.
    try {
      await WitnessStateMirror.check(mirrorOpened.mirrored, (origin) => witness.latest(origin));
    } catch (e) {
      witness.close();
      await db.close();
      throw e;
    }
    logger.info(
      `state mirror ${mirrorOpened.mirror.dir}: ${mirrorOpened.mirrored.length} log(s) checked against storage`,
    );
  }

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
      logger.info(
        { witness: key.name },
        `"${key.name}" serving on http://${opts.host}:${info.port}`,
      );
      logger.info(`verifier key (also in witness.vkey): ${key.verifierKey}`);
      logger.info(
        `trusting ${witness.trustedOrigins.length} log(s): ${witness.trustedOrigins.join(", ")}`,
      );
    },
  );
  const stop = (code: number = EXIT_OK) => {
    witness.close();
    server.close(
      () =>
        void (mirrorOpened?.mirror.flush() ?? Promise.resolve())
          .then(() => db.close())
          .then(() => {
            logger.flush();
            process.exit(code);
          }),
    );
  };
  // The port was free at the start-up check; if another process took it since: one line, exit 4.
  server.once("error", (e) => {
    logger.error(listenError(e, opts.host, port).message);
    stop(EXIT_IO);
  });
  process.on("SIGINT", () => stop());
  process.on("SIGTERM", () => stop());
}

export function registerWitness(program: Command): void {
  const command = program
    .command("witness")
    .description("run a C2SP tlog-witness that cosigns checkpoints of the logs it trusts");
  addSettings(command, WITNESS_SETTINGS)
    .addHelpText(
      "after",
      `\nExample:\n  npx vellum witness --data ./w1 --port 6963 --name witness.example/w1 --trust vellum-data/log.vkey\n${exitCodesHelp([EXIT_OK, EXIT_USAGE, EXIT_IO])}`,
    )
    .action(async (flags: Record<string, unknown>) => {
      const resolved = resolveSettings(WITNESS_SETTINGS, flags);
      if (flags.printConfig === true) {
        process.stdout.write(printConfig(WITNESS_SETTINGS, resolved));
        return;
      }
      await runWitness(
        asOptions<WitnessOptions>(resolved),
        () => asOptions<WitnessOptions>(resolveSettings(WITNESS_SETTINGS, flags)),
        resolved.configFile,
      );
    });
}
