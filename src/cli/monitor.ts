/**
 * `vellum monitor`: follows any C2SP tlog-tiles log, downloads and checks every entry, and
 * proves each new checkpoint consistent with the last one it verified (src/client/monitor.ts
 * says what exactly is checked). The state (verified size, compact range, checkpoint) lives in
 * `--state DIR/monitor-state.json`, written atomically after every verified checkpoint, so a
 * restart resumes and holds the log to what it signed before the restart.
 *
 * Exit codes (src/cli/exit-codes.ts): 0 caught up and verified (--once) or stopped by a
 * signal; 1 a checkpoint or entry that does not verify (bad signature, quorum not met, a
 * checkpoint older than the saved one, ...); 2 a usage error (bad flag, token refused);
 * 3 the log is inconsistent or served data that contradicts its checkpoint: an evidence file was
 * written (state dir, else the working directory) and POSTed to --webhook; 4 the log could not
 * be reached (or --once was interrupted).
 *
 * With --json, standard output is JSON Lines: one object per event (`event`: start, verified,
 * up-to-date, witness, error, evidence, stopped), no progress bar.
 *
 * Over 400 lines: the command and its state file, evidence files and output formats are one
 * flow a reader follows top to bottom; the checks themselves live in src/client/monitor.ts.
 */
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { Monitor, type MonitorProgress, type MonitorState } from "../client/monitor.js";
import { type Evidence, MonitorError } from "../client/monitor-evidence.js";
import { TileReader } from "../client/tiles.js";
import { compareWitnessViews } from "../client/witness-views.js";
import { check, VellumError } from "../core/errors.js";
import { parseVerifierKey, SIG_TYPE_ED25519 } from "../core/keys.js";
import { parsePolicy } from "../core/policy.js";
import { writeFileDurably } from "../platform/durable-file.js";
import { type ConnectionFlags, connectionOptions, resolveConnection } from "./connection.js";
import {
  EXIT_EVIDENCE,
  EXIT_IO,
  EXIT_OK,
  EXIT_USAGE,
  EXIT_VERIFY_FAILED,
  exitCodeOf,
  exitCodesHelp,
} from "./exit-codes.js";
import { IndexAudit } from "./index-audit.js";
import { readKeyArg } from "./keys-arg.js";

export { EXIT_EVIDENCE, EXIT_IO, EXIT_OK, EXIT_USAGE, EXIT_VERIFY_FAILED };
export const STATE_FILE = "monitor-state.json";
const STATE_FORMAT = "vellum-monitor-state/v1";

export interface MonitorCommandOptions extends ConnectionFlags {
  key: string;
  policy?: string;
  state?: string;
  once?: boolean;
  interval: string;
  webhook?: string;
  concurrency: string;
  witnesses?: boolean;
  index?: boolean;
  json?: boolean;
}

/** Where the command writes and what it reads besides its options (tests pass their own). */
export interface MonitorIo {
  readonly stdout: { write(text: string): unknown; isTTY?: boolean };
  readonly stderr: { write(text: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Stops polling; without one, SIGINT and SIGTERM do. */
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
}

interface StateFile extends MonitorState {
  readonly format: typeof STATE_FORMAT;
  readonly origin: string;
  readonly logKey: string;
  readonly url: string;
  readonly updated: string;
}

function positive(value: string, what: string, integer: boolean): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new VellumError("OUT_OF_RANGE", `${what} must be a positive number, got "${value}"`);
  }
  return n;
}

function readState(path: string, logKey: string): MonitorState | undefined {
  if (!existsSync(path)) return undefined;
  let doc: StateFile;
  try {
    doc = JSON.parse(readFileSync(path, "utf8")) as StateFile;
  } catch (e) {
    throw new VellumError("MALFORMED", `${path}: not JSON (${(e as Error).message})`);
  }
  check(doc?.format === STATE_FORMAT, "MALFORMED", `${path}: not a ${STATE_FORMAT} file`);
  check(
    doc.logKey === logKey,
    "STATE_MISMATCH",
    `${path} holds the state of another log key (${doc.logKey}); use another --state directory`,
  );
  return { size: doc.size, hashes: doc.hashes, checkpoint: doc.checkpoint };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60
    ? `${m} min ${Math.round(seconds % 60)} s`
    : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Renders progress: a redrawn bar on a terminal, a plain line every 5 s otherwise. */
function progressPrinter(io: MonitorIo) {
  const tty = io.stdout.isTTY === true;
  let lastLine = 0;
  let drawn = false;
  return {
    update(p: MonitorProgress) {
      const total = p.to - p.from;
      const done = p.done - p.from;
      const share = total > 0 ? done / total : 1;
      const stats = `${fmt(p.done)}/${fmt(p.to)} entries  ${fmt(p.entriesPerSecond)} entries/s  ETA ${duration(p.etaSeconds)}`;
      if (tty) {
        const width = 30;
        const filled = Math.round(share * width);
        const bar = `${"#".repeat(filled)}${".".repeat(width - filled)}`;
        io.stdout.write(`\r[${bar}] ${(share * 100).toFixed(0).padStart(3)}%  ${stats}\x1b[K`);
        drawn = true;
      } else if (p.elapsedMs - lastLine >= 5000) {
        lastLine = p.elapsedMs;
        io.stdout.write(`vellum monitor: ${(share * 100).toFixed(0)}%  ${stats}\n`);
      }
    },
    end() {
      if (drawn) io.stdout.write("\r\x1b[K");
      drawn = false;
      lastLine = 0;
    },
  };
}

async function postWebhook(url: string, evidence: Evidence, io: MonitorIo): Promise<void> {
  try {
    const res = await (io.fetch ?? fetch)(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(evidence),
      signal: AbortSignal.timeout(10_000),
    });
    res.body?.cancel().catch(() => {});
    if (!res.ok) throw new Error(`status ${res.status}`);
    io.stderr.write(`vellum monitor: evidence POSTed to ${url}\n`);
  } catch (e) {
    io.stderr.write(`vellum monitor: POST to ${url} failed: ${(e as Error).message}\n`);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      done();
    }
    signal.addEventListener("abort", finish);
  });
}

/**
 * Creates the state directory (mode 0700: it records what this monitor trusts) or checks an
 * existing one is a writable directory, so a wrong --state fails at start, not at the evidence.
 */
function makeStateDir(dir: string, io: MonitorIo): void {
  try {
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700); // the umask may have narrowed it; never widened
      io.stdout.write(`vellum monitor: created the state directory ${dir}\n`);
    }
    check(statSync(dir).isDirectory(), "MALFORMED", `--state ${dir} is not a directory`);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    if (e instanceof VellumError) throw e;
    throw new VellumError("MALFORMED", `--state ${dir}: ${(e as Error).message}`);
  }
}

/**
 * Writes the evidence durably (fsync of the file and its directory) and returns the line that
 * reports it. If it cannot be written, that line carries the evidence in full, so it is never lost.
 */
function writeEvidence(dir: string, e: MonitorError): string {
  const stamp = e.evidence.detectedAt.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const base = join(dir, `evidence-${stamp}-${e.code.toLowerCase()}`);
  const text = `${JSON.stringify(e.evidence, null, 1)}\n`;
  // Two conflicts caught in the same second keep both files.
  let file = `${base}.json`;
  for (let n = 2; existsSync(file); n++) file = `${base}-${n}.json`;
  try {
    writeFileDurably(file, text);
    return `evidence written to ${file}`;
  } catch (err) {
    return `could not write the evidence to ${file} (${(err as Error).message}); here it is:\n${text.trimEnd()}`;
  }
}

/** Runs the command; resolves to the exit code. */
export async function runMonitor(opts: MonitorCommandOptions, io: MonitorIo): Promise<number> {
  const json = opts.json === true;
  const emit = (event: string, fields: Record<string, unknown>) =>
    io.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
  const connection = resolveConnection(opts, io.env);
  const logKey = readKeyArg(opts.key, "--key", SIG_TYPE_ED25519);
  const origin = parseVerifierKey(logKey).name;
  const intervalMs = positive(opts.interval, "--interval", false) * 1000;
  const concurrency = positive(opts.concurrency, "--concurrency", true);
  const policy = opts.policy === undefined ? undefined : readFileSync(opts.policy, "utf8");
  const token = connection.token;
  const stateDir = opts.state === undefined ? undefined : resolve(opts.state);
  // Made now, not when the first evidence is due: a missing directory must not cost the evidence.
  if (stateDir !== undefined)
    makeStateDir(stateDir, json ? { ...io, stdout: { write: () => {} } } : io);
  const statePath = stateDir === undefined ? undefined : join(stateDir, STATE_FILE);
  const saved = statePath === undefined ? undefined : readState(statePath, logKey);

  const controller = new AbortController();
  const stop = () => controller.abort();
  if (io.signal === undefined) {
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  } else if (io.signal.aborted) {
    stop();
  } else {
    io.signal.addEventListener("abort", stop, { once: true });
  }
  const progress = json ? { update() {}, end() {} } : progressPrinter(io);
  const reader = new TileReader({
    url: connection.url,
    ...(token === undefined || token === ""
      ? {}
      : { headers: { Authorization: `Bearer ${token}` } }),
    ...(io.fetch === undefined ? {} : { fetch: io.fetch }),
    signal: controller.signal,
  });
  const indexAudit =
    opts.index === true
      ? new IndexAudit({
          main: reader,
          index: new TileReader({
            url: new URL("index/", reader.url).href,
            ...(io.fetch === undefined ? {} : { fetch: io.fetch }),
            signal: controller.signal,
          }),
          logKey,
        })
      : undefined;
  const monitor = new Monitor({
    reader,
    logKey,
    ...(policy === undefined ? {} : { policy }),
    ...(saved === undefined ? {} : { state: saved }),
    concurrency,
    onProgress: (p) => progress.update(p),
  });
  const say = (line: string) => {
    if (!json) io.stdout.write(`vellum monitor: ${line}\n`);
  };
  say(
    saved === undefined
      ? `following ${origin} at ${reader.url} from size 0`
      : `resuming ${origin} at ${reader.url} from verified size ${fmt(saved.size)}`,
  );
  if (json) emit("start", { origin, url: reader.url, verifiedSize: saved?.size ?? 0 });

  try {
    for (;;) {
      try {
        const r = await monitor.update();
        progress.end();
        if (statePath !== undefined) {
          const doc: StateFile = {
            format: STATE_FORMAT,
            origin,
            logKey,
            url: reader.url,
            updated: new Date().toISOString(),
            ...monitor.state,
          };
          writeFileDurably(statePath, `${JSON.stringify(doc, null, 1)}\n`);
        }
        const signed =
          r.timestamp === undefined ? "" : `, signed ${new Date(r.timestamp * 1000).toISOString()}`;
        if (opts.witnesses && policy !== undefined) {
          const views = await compareWitnessViews({
            reader,
            logKey,
            policy: parsePolicy(policy),
            checkpoint: r.checkpoint,
            size: r.size,
            rootHash: r.rootHash,
            ...(io.fetch === undefined ? {} : { fetch: io.fetch }),
          });
          for (const v of views) {
            if (json) emit("witness", { ...v });
            say(
              `witness ${v.witness}: ${v.status}${v.size === null ? "" : ` at size ${fmt(v.size)}`}${v.detail ? ` (${v.detail})` : ""}`,
            );
          }
        }
        if (indexAudit !== undefined) {
          const a = await indexAudit.update();
          if (json) emit("index", { ...a });
          say(
            `index: ${fmt(a.revisions)} revision(s) checked, covering ${fmt(a.indexedSize)} entries (${fmt(a.keys)} keys replayed)`,
          );
        }
        if (json && (r.newEntries > 0 || opts.once)) {
          emit(r.newEntries > 0 ? "verified" : "up-to-date", {
            size: r.size,
            newEntries: r.newEntries,
            elapsedMs: r.elapsedMs,
            entriesPerSecond: r.entriesPerSecond,
            signedAt: r.timestamp ?? null,
            checkpoint: r.checkpoint,
          });
        }
        if (r.newEntries > 0) {
          say(
            `verified size ${fmt(r.size)}: +${fmt(r.newEntries)} entries in ${duration(r.elapsedMs / 1000)} (${fmt(r.entriesPerSecond)} entries/s)${signed}`,
          );
        } else if (opts.once) {
          say(`up to date at size ${fmt(r.size)}${signed}`);
        }
        if (opts.once) return EXIT_OK;
      } catch (e) {
        progress.end();
        if (e instanceof MonitorError) {
          // Durably on disk first, then reported: a report must never name a file not yet there.
          const written = writeEvidence(stateDir ?? process.cwd(), e);
          io.stderr.write(`vellum monitor: ${e.code}: ${e.message}\n`);
          io.stderr.write(`vellum monitor: ${written}\n`);
          if (json) emit("evidence", { code: e.code, message: e.message, written });
          if (opts.webhook !== undefined) await postWebhook(opts.webhook, e.evidence, io);
          return EXIT_EVIDENCE;
        }
        if (controller.signal.aborted) break;
        const message = e instanceof VellumError ? `${e.code}: ${e.message}` : String(e);
        io.stderr.write(`vellum monitor: ${message}\n`);
        const code = exitCodeOf(e);
        if (json) {
          emit("error", {
            code: e instanceof VellumError ? e.code : null,
            message: e instanceof VellumError ? e.message : String(e),
            exitCode: code,
          });
        }
        if (opts.once) return code;
      }
      if (controller.signal.aborted) break;
      await sleep(intervalMs, controller.signal);
      if (controller.signal.aborted) break;
    }
    say(`stopped at verified size ${fmt(monitor.size)}`);
    if (json) emit("stopped", { verifiedSize: monitor.size });
    // --once interrupted before it caught up: nothing was shown wrong, but it is not done either.
    return opts.once ? EXIT_IO : EXIT_OK;
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
  }
}

export function registerMonitor(program: Command): void {
  connectionOptions(
    program
      .command("monitor")
      .description(
        "follow a C2SP tlog-tiles log: verify every checkpoint, download and check every entry, detect split views",
      ),
    "read",
    { urlHelp: "the log's tlog-tiles prefix (serves /checkpoint and /tile/)" },
  )
    .requiredOption(
      "--key <vkey|file>",
      "the log's verifier key: its text, or a file holding it (e.g. DATA/log.vkey)",
    )
    .option("--policy <file>", "a C2SP tlog-policy file: checkpoints must meet its witness quorum")
    .option(
      "--state <dir>",
      "directory for the monitor's state and evidence files (created, mode 0700, if missing)",
    )
    .option("--once", "catch up once, then exit: 0 when everything verified")
    .option("--interval <seconds>", "seconds between polls", "10")
    .option("--webhook <url>", "POST evidence JSON here when the log is caught misbehaving")
    .option("--concurrency <n>", "entry bundles fetched in parallel", "8")
    .option(
      "--witnesses",
      "also compare the checkpoint each policy witness cosigned with this view (needs --policy)",
    )
    .option(
      "--index",
      "also hold a Vellum server's verifiable index (/index/) to the log: replay the key function over every entry, check every revision",
    )
    .option("--json", "JSON Lines on standard output: one object per event, no progress bar")
    .addHelpText(
      "after",
      `
Example:
  npx vellum monitor --url http://127.0.0.1:6962 --key vellum-data/log.vkey \\
    --state ./monitor --once
${exitCodesHelp([EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_EVIDENCE, EXIT_IO])}`,
    )
    .action(async (opts: MonitorCommandOptions) => {
      process.exitCode = await runMonitor(opts, {
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
      });
    });
}
