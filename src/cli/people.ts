/**
 * Commands for people: `vellum keygen`, `vellum submit`, `vellum verify`, `vellum inspect`.
 * Errors are one line saying what to do, with an exit code from src/cli/exit-codes.ts; `--json`
 * prints one JSON document on standard output instead of text; `verify` works offline with the
 * log's key alone.
 */
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import type { Command } from "commander";
import { type SubmitResult, VellumClient } from "../client/http.js";
import { receiptVerifier, type VerifiedReceipt } from "../client/receipts.js";
import { base64Encode } from "../core/bytes.js";
import { openCheckpoint } from "../core/checkpoint.js";
import { MAX_PAYLOAD_SIZE } from "../core/entry.js";
import { isVellumError } from "../core/errors.js";
import {
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  signerFromSeed,
  verifierFromKey,
} from "../core/keys.js";
import { type Policy, parsePolicy } from "../core/policy.js";
import { TLOG_PROOF_HEADER } from "../core/tlog-proof.js";
import { createSecretFile } from "../platform/durable-file.js";
import {
  type ConnectionFlags,
  connectionOptions,
  explainUnauthenticated,
  resolveConnection,
} from "./connection.js";
import {
  EXIT_IO,
  EXIT_VERIFY_FAILED,
  ExitError,
  errorLine,
  exitCodesHelp,
  usageError,
} from "./exit-codes.js";
import { readKeyArg } from "./keys-arg.js";

/** Prints one JSON document (a line) on standard output. */
const printJson = (doc: unknown) => process.stdout.write(`${JSON.stringify(doc)}\n`);

/** A file's bytes (`-` or none: standard input); an unreadable file names itself. */
function readInput(file: string | undefined, what: string): Uint8Array {
  const from = file === undefined || file === "-" ? 0 : file;
  try {
    return new Uint8Array(readFileSync(from));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const name = from === 0 ? "standard input" : file;
    const message = `cannot read ${what} ${name} (${code ?? (e as Error).message})`;
    if (code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR") throw usageError(message);
    throw new ExitError(EXIT_IO, message, { cause: e });
  }
}

/** A witness policy file, parsed now: a bad one is a usage error, not a failed verification. */
function readPolicy(file: string | undefined): Policy | undefined {
  if (file === undefined) return undefined;
  const text = readInput(file, "the policy file");
  try {
    return parsePolicy(text);
  } catch (e) {
    throw usageError(`--policy ${file}: not a C2SP tlog-policy (${errorLine(e)})`);
  }
}

/** Whether a line holds nothing but whitespace (space, tab, CR, VT, FF): not an entry. */
function isBlank(bytes: Uint8Array): boolean {
  for (const b of bytes)
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0b && b !== 0x0c) return false;
  return true;
}

/**
 * Lines of `bytes` (LF or CRLF), byte-exact, with their 1-based line numbers; empty and
 * whitespace-only lines skipped (the same rule for `submit --lines` and `verify --lines --entry`).
 */
function splitLines(bytes: Uint8Array): { line: number; payload: Uint8Array }[] {
  const out: { line: number; payload: Uint8Array }[] = [];
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    const payload = bytes.subarray(start, stop);
    if (!isBlank(payload)) out.push({ line, payload });
    start = end + 1;
  }
  return out;
}

/** Names at most a few of many lines in an error message. */
function someLines(lines: readonly number[]): string {
  const shown = lines.slice(0, 5).join(", ");
  return lines.length > 5 ? `${shown} and ${lines.length - 5} more` : shown;
}

/**
 * Refuses a JSON Lines input with lines that are not JSON, before anything is sent, naming them.
 * (`--raw` skips this: each line is logged as the bytes it is.)
 */
function checkJsonLines(lines: readonly { line: number; payload: Uint8Array }[]): void {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const bad: number[] = [];
  let first = "";
  for (const { line, payload } of lines) {
    try {
      JSON.parse(utf8.decode(payload));
    } catch (e) {
      if (bad.length === 0) first = (e as Error).message;
      bad.push(line);
    }
  }
  if (bad.length > 0) {
    throw usageError(
      `${bad.length === 1 ? "line" : "lines"} ${someLines(bad)} ${bad.length === 1 ? "is" : "are"} not JSON ` +
        `(line ${bad[0]}: ${first}); nothing was submitted. --lines takes JSON Lines; ` +
        "add --raw to log every line's bytes as they are",
    );
  }
}

/** `vellum submit --lines`: every line an entry, in batches; one JSON line per receipt. */
async function submitLines(
  client: VellumClient,
  bytes: Uint8Array,
  o: { idempotencyKey?: string; out?: string; raw?: boolean; json?: boolean },
): Promise<void> {
  const lines = splitLines(bytes);
  if (lines.length === 0) throw usageError("nothing to submit: every line is empty");
  const tooLong = lines.find(({ payload }) => payload.length > MAX_PAYLOAD_SIZE);
  if (tooLong !== undefined) {
    throw usageError(
      `line ${tooLong.line} is ${tooLong.payload.length} bytes; an entry holds at most ${MAX_PAYLOAD_SIZE} (nothing was submitted)`,
    );
  }
  if (o.raw !== true) checkJsonLines(lines);
  const keyPrefix = o.idempotencyKey;
  const fd = o.out === undefined ? undefined : openSync(o.out, "w");
  // Standard output through its stream (a pipe may be non-blocking: a raw writeSync could fail
  // with EAGAIN on a large import); a file directly.
  const write = (text: string): Promise<void> | void =>
    fd === undefined
      ? new Promise((resolve, reject) =>
          process.stdout.write(text, (e) => (e ? reject(e) : resolve())),
        )
      : void writeSync(fd, text);
  let logged = 0;
  let duplicates = 0;
  let size = 0;
  try {
    // Chunks bound the memory for receipts; within a chunk the SDK sends parallel batches.
    for (let i = 0; i < lines.length; i += 10_000) {
      const chunk = lines.slice(i, i + 10_000);
      const results = await client.submitBatch(
        chunk.map(({ line, payload }) =>
          keyPrefix === undefined
            ? { payload }
            : { payload, idempotencyKey: `${keyPrefix}/${line}` },
        ),
      );
      let text = "";
      for (const [k, r] of results.entries()) {
        if (r.duplicate) duplicates++;
        else logged++;
        size = Math.max(size, r.treeSize);
        text += `${JSON.stringify({
          line: chunk[k]!.line,
          index: r.index,
          id: r.id,
          timestamp: r.timestamp,
          submitter: r.submitter ?? null,
          duplicate: r.duplicate,
          witnessed: r.witnessed,
          receipt: r.receipt,
        })}\n`;
      }
      await write(text);
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // Standard output holds only the receipts (JSON Lines): the summary goes to standard error.
  process.stderr.write(
    o.json === true
      ? `${JSON.stringify({ entries: lines.length, logged, duplicates, treeSize: size })}\n`
      : `${lines.length} entries: ${logged} logged, ${duplicates} already in the log; tree size ${size}\n`,
  );
}

/** A submission's answer as JSON (the receipt text included). */
const resultJson = (r: SubmitResult) => ({
  index: r.index,
  id: r.id,
  timestamp: r.timestamp,
  submitter: r.submitter ?? null,
  leafHash: base64Encode(r.leafHash),
  treeSize: r.treeSize,
  duplicate: r.duplicate,
  witnessed: r.witnessed,
  checkpoint: r.checkpoint,
  receipt: r.receipt,
});

interface VerifyOptions {
  key: string;
  policy?: string;
  entry?: string;
  json?: boolean;
}

const verifiedJson = (v: VerifiedReceipt) => ({
  index: v.index,
  treeSize: v.treeSize,
  rootHash: v.rootHash,
  origin: v.origin,
  id: v.id,
  timestamp: v.timestamp,
  leafHash: base64Encode(v.leafHash),
  witnesses: v.witnesses,
  signedAt: v.signedAt ?? null,
  payloadChecked: v.payloadChecked,
});

/** Why `text` is not a receipt, with what to do instead; undefined if it looks like one. */
function notAReceipt(text: string, file: string): string | undefined {
  if (text.startsWith(`${TLOG_PROOF_HEADER}\n`)) return undefined;
  const start = text.trimStart();
  if (start.startsWith("{")) {
    return (
      `MALFORMED: ${file} is not a receipt: it looks like JSON Lines; for the receipts file ` +
      "`vellum submit --lines` writes, add --lines"
    );
  }
  return `MALFORMED: ${file} is not a receipt: a receipt (C2SP tlog-proof) starts with the line "${TLOG_PROOF_HEADER}"`;
}

/** A verification failure (exit 1) saying what failed. */
const verifyFailure = (e: unknown, where = "") =>
  isVellumError(e) ? new ExitError(EXIT_VERIFY_FAILED, `${where}${errorLine(e)}`, { cause: e }) : e;

/** `vellum verify RECEIPT`: one C2SP tlog-proof file. */
function verifyOne(receiptFile: string, o: VerifyOptions): void {
  const receipt = readInput(receiptFile, "the receipt");
  const logKey = readKeyArg(o.key, "--key", SIG_TYPE_ED25519);
  const policy = readPolicy(o.policy);
  const payload = o.entry === undefined ? undefined : readInput(o.entry, "the entry");
  const fail = (e: ExitError | Error): never => {
    if (o.json === true) {
      printJson({
        verified: false,
        error: { code: isVellumError(e.cause) ? e.cause.code : "MALFORMED", message: e.message },
      });
    }
    throw e;
  };
  const why = notAReceipt(new TextDecoder().decode(receipt.subarray(0, 4096)), receiptFile);
  if (why !== undefined) fail(new ExitError(EXIT_VERIFY_FAILED, why));
  let v: VerifiedReceipt | undefined;
  try {
    v = receiptVerifier({ logKey, ...(policy === undefined ? {} : { policy }) })(receipt, payload);
  } catch (e) {
    fail(verifyFailure(e) as Error);
  }
  if (v === undefined) return;
  if (o.json === true) {
    printJson({ verified: true, ...verifiedJson(v) });
    return;
  }
  const cosigned = v.witnesses.length > 0 ? `, cosigned by ${v.witnesses.join(", ")}` : "";
  const entry = v.payloadChecked ? ", for exactly this entry" : "";
  // The submitter is proven only with the entry (it is part of the rebuilt leaf).
  const by =
    v.submitter === undefined
      ? ""
      : `, submitted by token ${v.submitter}${v.payloadChecked ? "" : " (unproven without --entry)"}`;
  process.stdout.write(
    `verified at index ${v.index} in tree of size ${v.treeSize} of ${v.origin}${cosigned}${entry} (id ${v.id}, logged ${new Date(v.timestamp).toISOString()}${by})\n`,
  );
}

interface LineFailure {
  /** The receipts file's line (0 when the failure is about the entries file as a whole). */
  readonly at: number;
  /** The entries file's line the receipt is for, when known. */
  readonly entryLine: number | null;
  readonly code: string;
  readonly message: string;
}

/**
 * `vellum verify --lines RECEIPTS`: the receipts `submit --lines` wrote, one JSON object per line.
 * With --entry (the submitted file) each receipt must be for exactly its line's bytes, and every
 * non-empty line must have a receipt. Checks every line and reports every failure (one line each
 * on standard error, or in the JSON document), then exits 1 if there was any.
 */
function verifyLines(receiptFile: string, o: VerifyOptions): void {
  const logKey = readKeyArg(o.key, "--key", SIG_TYPE_ED25519);
  const policy = readPolicy(o.policy);
  // Receipts of one batch share a checkpoint: its signatures are checked once.
  const verify = receiptVerifier({ logKey, ...(policy === undefined ? {} : { policy }) });
  const entries =
    o.entry === undefined
      ? undefined
      : new Map(splitLines(readInput(o.entry, "the entries file")).map((l) => [l.line, l.payload]));
  const text = new TextDecoder().decode(readInput(receiptFile, "the receipts file"));
  const covered = new Set<number>();
  const origins = new Set<string>();
  const failures: LineFailure[] = [];
  const failed = (f: LineFailure) => {
    failures.push(f);
    if (o.json !== true) {
      const what = f.entryLine === null ? "" : ` (entry line ${f.entryLine})`;
      const where = f.at === 0 ? "" : `${receiptFile} line ${f.at}${what}: `;
      process.stderr.write(`vellum: ${where}${f.code === "" ? "" : `${f.code}: `}${f.message}\n`);
    }
  };
  let count = 0;
  let rows = 0;
  let lowest = Number.POSITIVE_INFINITY;
  let highest = -1;
  if (text.startsWith(`${TLOG_PROOF_HEADER}\n`)) {
    throw new ExitError(
      EXIT_VERIFY_FAILED,
      `${receiptFile} is a single receipt, not a receipts file: verify it without --lines`,
    );
  }
  for (const [k, raw] of text.split("\n").entries()) {
    if (raw.trim() === "") continue;
    rows++;
    const at = k + 1;
    let row: { line?: unknown; index?: unknown; receipt?: unknown };
    try {
      row = JSON.parse(raw);
    } catch {
      failed({
        at,
        entryLine: null,
        code: "",
        message: "not JSON (expected what `vellum submit --lines` writes)",
      });
      continue;
    }
    if (typeof row?.receipt !== "string" || typeof row.line !== "number") {
      failed({
        at,
        entryLine: null,
        code: "",
        message: 'needs "line" (a number) and "receipt" (the tlog-proof text)',
      });
      continue;
    }
    const entryLine = row.line;
    const payload = entries?.get(entryLine);
    if (entries !== undefined && payload === undefined) {
      failed({
        at,
        entryLine,
        code: "",
        message: `line ${entryLine} of ${o.entry} is empty or missing`,
      });
      continue;
    }
    let v: VerifiedReceipt;
    try {
      v = verify(row.receipt, payload);
    } catch (e) {
      if (!isVellumError(e)) throw e;
      failed({ at, entryLine, code: e.code, message: e.message });
      continue;
    }
    if (row.index !== undefined && row.index !== v.index) {
      failed({
        at,
        entryLine,
        code: "",
        message: `says index ${row.index} but its receipt proves index ${v.index}`,
      });
      continue;
    }
    covered.add(entryLine);
    origins.add(v.origin);
    lowest = Math.min(lowest, v.index);
    highest = Math.max(highest, v.index);
    count++;
  }
  if (rows === 0) throw new ExitError(EXIT_VERIFY_FAILED, `${receiptFile} holds no receipts`);
  const missing = entries === undefined ? [] : [...entries.keys()].filter((l) => !covered.has(l));
  if (missing.length > 0) {
    failed({
      at: 0,
      entryLine: null,
      code: "",
      message: `${missing.length} line(s) of ${o.entry} have no receipt here, the first is line ${missing[0]} (lines ${someLines(missing)})`,
    });
  }
  if (o.json === true) {
    printJson({
      verified: failures.length === 0,
      receipts: rows,
      verifiedReceipts: count,
      origins: [...origins],
      lowestIndex: count === 0 ? null : lowest,
      highestIndex: count === 0 ? null : highest,
      entriesChecked: entries !== undefined,
      missingLines: missing,
      failures: failures.map((f) => ({
        line: f.at === 0 ? null : f.at,
        entryLine: f.entryLine,
        code: f.code === "" ? null : f.code,
        message: f.message,
      })),
    });
  }
  if (failures.length > 0) {
    throw new ExitError(
      EXIT_VERIFY_FAILED,
      `${count} of ${rows} receipts verified; ${failures.length} failure(s) (each reported ${o.json === true ? "in the JSON" : "above"})`,
    );
  }
  if (o.json === true) return;
  process.stdout.write(
    `verified ${count} receipts of ${[...origins].join(", ")}, indices ${lowest} to ${highest}` +
      `${entries === undefined ? "" : `, each for exactly its line of ${o.entry}`}\n`,
  );
}

export function registerPeopleCommands(program: Command): void {
  program
    .command("keygen")
    .description("make an Ed25519 key: a log key (signed notes) or a witness key (cosignatures)")
    .requiredOption("--name <name>", "the key name: a log's origin, or a witness name")
    .option("--type <type>", "log or witness", "log")
    .option(
      "--out <file>",
      "where to write the private key (mode 0600); the verifier key goes to stdout",
    )
    .option(
      "--json",
      "print {name, type, verifierKey, privateKeyFile} as JSON (never the private key)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum keygen --name witness.example/w1 --type witness --out w1.key > w1.vkey\n" +
        exitCodesHelp([0, 2, 4]),
    )
    .action((o: { name: string; type: string; out?: string; json?: boolean }) => {
      if (o.type !== "log" && o.type !== "witness")
        throw usageError(`--type must be "log" or "witness", not "${o.type}"`);
      if (!isValidKeyName(o.name))
        throw usageError(`--name "${o.name}" cannot name a key (no spaces, no "+")`);
      const type = o.type === "log" ? SIG_TYPE_ED25519 : SIG_TYPE_COSIGNATURE;
      const seed = randomBytes(32);
      const skey = formatSignerKey({ name: o.name, type, seed });
      const publicKey = signerFromSeed(o.name, seed).publicKey;
      if (o.out !== undefined) {
        try {
          createSecretFile(o.out, `${skey}\n`);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "EEXIST")
            throw usageError(`--out ${o.out} exists; keys are never overwritten`);
          throw e;
        }
        process.stderr.write(`wrote the private key to ${o.out} (mode 0600)\n`);
      } else {
        process.stderr.write("no --out: the private key follows; keep it secret\n");
        process.stderr.write(`${skey}\n`);
      }
      const verifierKey = formatVerifierKey({ name: o.name, type, publicKey });
      if (o.json === true) {
        printJson({ name: o.name, type: o.type, verifierKey, privateKeyFile: o.out ?? null });
      } else {
        process.stdout.write(`${verifierKey}\n`);
      }
    });

  connectionOptions(
    program
      .command("submit [file]")
      .description("submit an entry (a file, or standard input) and print its receipt"),
    "append",
    { adminTokenFile: true },
  )
    .option("--idempotency-key <key>", "resubmitting with the same key returns the original entry")
    .option("--out <file>", "write the receipt (C2SP tlog-proof) here instead of standard output")
    .option(
      "--lines",
      "JSON Lines: each line that is not blank is its own entry, sent in batches; every line " +
        "must be JSON (checked before anything is sent); prints one JSON object per entry: " +
        "line, index, id, timestamp, submitter, duplicate, witnessed, receipt",
    )
    .option("--raw", "with --lines: log each line's bytes as they are, JSON or not")
    .option(
      "--json",
      "print the answer as one JSON document (index, id, timestamp, submitter, leafHash, treeSize, duplicate, witnessed, checkpoint, receipt); with --lines, the summary on standard error is JSON",
    )
    .addHelpText(
      "after",
      '\nExamples:\n  echo \'{"user":"alice","action":"login"}\' | npx vellum submit --out login.tlog-proof\n' +
        "  npx vellum submit --lines audit.jsonl --out audit.receipts.jsonl\n" +
        `\nAn entry holds at most ${MAX_PAYLOAD_SIZE} bytes; a larger one is refused before anything is sent.\n` +
        "With --lines, --idempotency-key K gives line n the key K/n, so importing the same file\n" +
        "again (after an interruption) adds nothing twice. Without a key, every line is a new\n" +
        "entry, unless the log deduplicates by payload (`serve --dedup payload`): then a line\n" +
        "whose bytes are already in the log is answered with the original (duplicate: true).\n" +
        "Blank lines are skipped (their line numbers still count). Without --raw, a line that is\n" +
        "not JSON stops the import before anything is logged.\n" +
        exitCodesHelp([0, 2, 4]),
    )
    .action(
      async (
        file: string | undefined,
        o: ConnectionFlags & {
          idempotencyKey?: string;
          out?: string;
          lines?: boolean;
          raw?: boolean;
          json?: boolean;
        },
      ) => {
        if (o.raw === true && o.lines !== true) throw usageError("--raw goes with --lines");
        const connection = resolveConnection(o, process.env, { adminTokenFile: true });
        const payload = readInput(file, "the entry");
        if (o.lines !== true) {
          if (payload.length === 0) throw usageError("nothing to submit: the entry is empty");
          if (payload.length > MAX_PAYLOAD_SIZE) {
            throw usageError(
              `the entry is ${payload.length} bytes; an entry holds at most ${MAX_PAYLOAD_SIZE} (nothing was submitted)`,
            );
          }
        }
        const client = new VellumClient({
          url: connection.url,
          ...(connection.token === undefined ? {} : { token: connection.token }),
        });
        try {
          if (o.lines === true) {
            await submitLines(client, payload, o);
            return;
          }
          const r = await client.submit(
            payload,
            o.idempotencyKey === undefined ? {} : { idempotencyKey: o.idempotencyKey },
          );
          if (o.out !== undefined) writeFileSync(o.out, r.receipt);
          if (o.json === true) printJson(resultJson(r));
          else if (o.out === undefined) process.stdout.write(r.receipt);
          const by = r.submitter === undefined ? "" : `, submitted by token ${r.submitter}`;
          process.stderr.write(
            `${r.duplicate ? "already in the log" : "logged"}: index ${r.index}, id ${r.id}, ${new Date(r.timestamp).toISOString()}${by}, tree size ${r.treeSize}${r.witnessed ? ", witnessed" : ""}\n`,
          );
        } catch (e) {
          throw explainUnauthenticated(e, connection);
        }
      },
    );

  program
    .command("verify <receipt>")
    .description(
      "verify a receipt offline with the log's public key (and a witness policy, and the entry)",
    )
    .requiredOption(
      "--key <vkey|file>",
      "the log's verifier key: its text, or a file holding it (e.g. DATA/log.vkey)",
    )
    .option("--policy <file>", "C2SP tlog-policy: the checkpoint must meet its witness quorum")
    .option("--entry <file>", "the entry's payload: proves the receipt is for exactly these bytes")
    .option(
      "--lines",
      "the receipt file holds one JSON object per line, as `vellum submit --lines` writes; " +
        "--entry is then the file that was submitted, and each receipt must be for its line; " +
        "every failing line is reported",
    )
    .option("--json", "print the result as one JSON document (failures included)")
    .addHelpText(
      "after",
      "\nExamples:\n  npx vellum verify login.tlog-proof --key vellum-data/log.vkey --entry login.json\n" +
        "  npx vellum verify --lines audit.receipts.jsonl --entry audit.jsonl --key vellum-data/log.vkey\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action(
      (
        receiptFile: string,
        o: { key: string; policy?: string; entry?: string; lines?: boolean; json?: boolean },
      ) => {
        if (o.lines === true) {
          verifyLines(receiptFile, o);
          return;
        }
        verifyOne(receiptFile, o);
      },
    );

  connectionOptions(
    program
      .command("inspect")
      .description(
        "show a log's size, checkpoint, timestamp and witnesses (verifying the checkpoint with --key)",
      ),
    "read",
  )
    .option(
      "--key <vkey|file>",
      "the log's verifier key, its text or a file holding it (e.g. DATA/log.vkey): verifies the checkpoint",
    )
    .option("--json", "print what it shows as one JSON document (with the checkpoint note)")
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum inspect --url http://127.0.0.1:6962 --key vellum-data/log.vkey\n" +
        exitCodesHelp([0, 1, 2, 4]),
    )
    .action(async (o: ConnectionFlags & { key?: string; json?: boolean }) => {
      const connection = resolveConnection(o);
      const key = o.key === undefined ? undefined : readKeyArg(o.key, "--key", SIG_TYPE_ED25519);
      const client = new VellumClient({
        url: connection.url,
        ...(connection.token === undefined ? {} : { token: connection.token }),
        retries: 1,
      });
      let info: {
        origin: string;
        treeSize: number;
        publishedSize: number | null;
        checkpointTime: number;
        verifierKey: string;
        status: string;
        dedup?: string;
        witnesses: { name: string; cosignedSize: number | null; lastError: string | null }[];
      };
      let note: string;
      try {
        info = (await client.logInfo()) as typeof info;
        note = await client.checkpoint();
      } catch (e) {
        throw explainUnauthenticated(e, connection);
      }
      let verifiedSize: number | undefined;
      if (key !== undefined) {
        try {
          verifiedSize = openCheckpoint(note, verifierFromKey(key)).checkpoint.size;
        } catch (e) {
          throw verifyFailure(e, "the log's checkpoint does not verify with --key: ");
        }
      }
      if (o.json === true) {
        printJson({
          url: connection.url,
          origin: info.origin,
          status: info.status,
          treeSize: info.treeSize,
          publishedSize: info.publishedSize ?? null,
          checkpointTime: info.checkpointTime,
          verifierKey: info.verifierKey ?? null,
          checkpoint: note,
          verified: key !== undefined,
          verifiedWith: key ?? null,
          witnesses: info.witnesses,
        });
        return;
      }
      let verified = "not verified (pass --key)";
      if (key !== undefined) {
        verified = `verified with ${key.split("+")[0]}+${key.split("+")[1]} (size ${verifiedSize})`;
      } else if (info.verifierKey) {
        verified += `; the server says its key is ${info.verifierKey}`;
      }
      const lines = [
        `log       ${info.origin} (${info.status})`,
        `size      ${info.treeSize} signed, ${info.publishedSize ?? "none"} published`,
        `signed at ${new Date(info.checkpointTime * 1000).toISOString()}`,
        ...(info.dedup === undefined
          ? []
          : [
              `dedup     by ${info.dedup === "key" ? "idempotency key only" : "payload and idempotency key"}`,
            ]),
        `checkpoint ${verified}`,
        ...info.witnesses.map(
          (w) =>
            `witness   ${w.name}: ${w.cosignedSize === null ? "no cosignature yet" : `cosigned size ${w.cosignedSize}`}${w.lastError ? ` (last error: ${w.lastError})` : ""}`,
        ),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
