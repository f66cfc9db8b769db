/**
 * @module
 * `vellum verify`: a receipt (or `--lines` of them) checked offline with the log's key alone,
 * and a witness policy.
 */
import type { Command } from "commander";
import { receiptVerifier, type VerifiedReceipt } from "../../client/receipts.js";
import { base64Encode } from "../../core/bytes.js";
import { isVellumError } from "../../core/errors.js";
import { SIG_TYPE_ED25519 } from "../../core/keys.js";
import { TLOG_PROOF_HEADER } from "../../core/tlog-proof.js";
import { EXIT_VERIFY_FAILED, ExitError, errorLine, exitCodesHelp } from "../exit-codes.js";
import { readKeyArg } from "../keys-arg.js";

import { printJson, readInput, readPolicy, someLines, splitLines } from "./io.js";

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
export const verifyFailure = (e: unknown, where = "") =>
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

export function registerVerify(program: Command): void {
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
}
