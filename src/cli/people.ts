/**
 * Commands for people: `vellum keygen`, `vellum submit`, `vellum verify`, `vellum inspect`.
 * Errors are one line saying what to do; `verify` works offline with the log's key alone.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { VellumClient } from "../client/http.js";
import { receiptVerifier, verifyReceipt } from "../client/receipts.js";
import { openCheckpoint } from "../core/checkpoint.js";
import { MAX_PAYLOAD_SIZE } from "../core/entry.js";
import {
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  signerFromSeed,
  verifierFromKey,
} from "../core/keys.js";
import { DEFAULT_DATA, DEFAULT_HOST, DEFAULT_PORT } from "./serve.js";

const DEFAULT_URL = process.env.VELLUM_URL ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;

/** A verifier key given inline, or the path of a file holding one (e.g. DATA/log.vkey). */
export function readKeyArg(value: string): string {
  if (value.includes("+") && !existsSync(value)) return value.trim();
  try {
    return readFileSync(value, "utf8").trim();
  } catch {
    throw new Error(`--key: "${value}" is neither a verifier key nor a readable file`);
  }
}

function token(opts: { token?: string; tokenFile?: string }): string | undefined {
  if (opts.token !== undefined) return opts.token;
  if (process.env.VELLUM_TOKEN) return process.env.VELLUM_TOKEN.trim();
  const file = opts.tokenFile ?? join(process.env.VELLUM_DATA ?? DEFAULT_DATA, "admin.token");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/** Lines of `bytes` (LF or CRLF), byte-exact, with their 1-based line numbers; empty ones skipped. */
function splitLines(bytes: Uint8Array): { line: number; payload: Uint8Array }[] {
  const out: { line: number; payload: Uint8Array }[] = [];
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    if (stop > start) out.push({ line, payload: bytes.subarray(start, stop) });
    start = end + 1;
  }
  return out;
}

/** `vellum submit --lines`: every line an entry, in batches; one JSON line per receipt. */
async function submitLines(
  client: VellumClient,
  bytes: Uint8Array,
  keyPrefix: string | undefined,
  out: string | undefined,
): Promise<void> {
  const lines = splitLines(bytes);
  if (lines.length === 0) throw new Error("nothing to submit: every line is empty");
  const tooLong = lines.find(({ payload }) => payload.length > MAX_PAYLOAD_SIZE);
  if (tooLong !== undefined) {
    throw new Error(
      `line ${tooLong.line} is ${tooLong.payload.length} bytes; an entry holds at most ${MAX_PAYLOAD_SIZE} (nothing was submitted)`,
    );
  }
  const fd = out === undefined ? undefined : openSync(out, "w");
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
  process.stderr.write(
    `${lines.length} entries: ${logged} logged, ${duplicates} already in the log; tree size ${size}\n`,
  );
}

interface VerifyOptions {
  key: string;
  policy?: string;
  entry?: string;
}

/** `vellum verify RECEIPT`: one C2SP tlog-proof file. */
function verifyOne(receiptFile: string, o: VerifyOptions): void {
  const receipt = readFileSync(receiptFile === "-" ? 0 : receiptFile);
  const v = verifyReceipt(receipt, {
    logKey: readKeyArg(o.key),
    ...(o.policy === undefined ? {} : { policy: readFileSync(o.policy, "utf8") }),
    ...(o.entry === undefined ? {} : { payload: new Uint8Array(readFileSync(o.entry)) }),
  });
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

/**
 * `vellum verify --lines RECEIPTS`: the receipts `submit --lines` wrote, one JSON object per line.
 * With --entry (the submitted file) each receipt must be for exactly its line's bytes, and every
 * non-empty line must have a receipt. Stops at the first failure, naming the line.
 */
function verifyLines(receiptFile: string, o: VerifyOptions): void {
  const policy = o.policy === undefined ? undefined : readFileSync(o.policy, "utf8");
  // Receipts of one batch share a checkpoint: its signatures are checked once.
  const verify = receiptVerifier({
    logKey: readKeyArg(o.key),
    ...(policy === undefined ? {} : { policy }),
  });
  const entries =
    o.entry === undefined
      ? undefined
      : new Map(splitLines(new Uint8Array(readFileSync(o.entry))).map((l) => [l.line, l.payload]));
  const text = readFileSync(receiptFile === "-" ? 0 : receiptFile, "utf8");
  const covered = new Set<number>();
  const origins = new Set<string>();
  let count = 0;
  let lowest = Number.POSITIVE_INFINITY;
  let highest = -1;
  for (const [k, raw] of text.split("\n").entries()) {
    if (raw.trim() === "") continue;
    const where = `${receiptFile} line ${k + 1}`;
    let row: { line?: unknown; index?: unknown; receipt?: unknown };
    try {
      row = JSON.parse(raw);
    } catch {
      throw new Error(`${where}: not JSON (expected what \`vellum submit --lines\` writes)`);
    }
    if (typeof row.receipt !== "string" || typeof row.line !== "number") {
      throw new Error(`${where}: needs "line" (a number) and "receipt" (the tlog-proof text)`);
    }
    const payload = entries?.get(row.line);
    if (entries !== undefined && payload === undefined) {
      throw new Error(`${where}: line ${row.line} of ${o.entry} is empty or missing`);
    }
    let v: ReturnType<typeof verifyReceipt>;
    try {
      v = verify(row.receipt, payload);
    } catch (e) {
      throw new Error(`${where} (entry line ${row.line}): ${(e as Error).message}`);
    }
    if (row.index !== undefined && row.index !== v.index) {
      throw new Error(`${where}: says index ${row.index} but its receipt proves index ${v.index}`);
    }
    covered.add(row.line);
    origins.add(v.origin);
    lowest = Math.min(lowest, v.index);
    highest = Math.max(highest, v.index);
    count++;
  }
  if (count === 0) throw new Error(`${receiptFile} holds no receipts`);
  const missing = entries === undefined ? [] : [...entries.keys()].filter((l) => !covered.has(l));
  if (missing.length > 0) {
    throw new Error(
      `${missing.length} line(s) of ${o.entry} have no receipt here, the first is line ${missing[0]}`,
    );
  }
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
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum keygen --name witness.example/w1 --type witness --out w1.key > w1.vkey\n",
    )
    .action((o: { name: string; type: string; out?: string }) => {
      if (o.type !== "log" && o.type !== "witness")
        throw new Error(`--type must be "log" or "witness", not "${o.type}"`);
      if (!isValidKeyName(o.name))
        throw new Error(`--name "${o.name}" cannot name a key (no spaces, no "+")`);
      const type = o.type === "log" ? SIG_TYPE_ED25519 : SIG_TYPE_COSIGNATURE;
      const seed = randomBytes(32);
      const skey = formatSignerKey({ name: o.name, type, seed });
      const publicKey = signerFromSeed(o.name, seed).publicKey;
      if (o.out !== undefined) {
        const fd = openSync(o.out, "wx", 0o600);
        try {
          writeSync(fd, `${skey}\n`);
        } finally {
          closeSync(fd);
        }
        process.stderr.write(`wrote the private key to ${o.out} (mode 0600)\n`);
      } else {
        process.stderr.write("no --out: the private key follows; keep it secret\n");
        process.stderr.write(`${skey}\n`);
      }
      process.stdout.write(`${formatVerifierKey({ name: o.name, type, publicKey })}\n`);
    });

  program
    .command("submit [file]")
    .description("submit an entry (a file, or standard input) and print its receipt")
    .option("--url <url>", "the log server (env VELLUM_URL)", DEFAULT_URL)
    .option("--token <token>", "bearer token with the append scope (env VELLUM_TOKEN)")
    .option(
      "--token-file <file>",
      "file holding the token (default: the data folder's admin.token)",
    )
    .option("--idempotency-key <key>", "resubmitting with the same key returns the original entry")
    .option("--out <file>", "write the receipt (C2SP tlog-proof) here instead of standard output")
    .option(
      "--lines",
      "each non-empty line is its own entry (e.g. JSON Lines audit events), sent in batches; " +
        "prints one JSON object per entry: line, index, id, timestamp, submitter, duplicate, receipt",
    )
    .addHelpText(
      "after",
      '\nExamples:\n  echo \'{"user":"alice","action":"login"}\' | npx vellum submit --out login.tlog-proof\n' +
        "  npx vellum submit --lines audit.jsonl --out audit.receipts.jsonl\n" +
        "\nWith --lines, --idempotency-key K gives line n the key K/n, so importing the same file\n" +
        "again (after an interruption) adds nothing twice. Without a key, every line is a new\n" +
        "entry, unless the log deduplicates by payload (`serve --dedup payload`): then a line\n" +
        "whose bytes are already in the log is answered with the original (duplicate: true).\n",
    )
    .action(
      async (
        file: string | undefined,
        o: {
          url: string;
          token?: string;
          tokenFile?: string;
          idempotencyKey?: string;
          out?: string;
          lines?: boolean;
        },
      ) => {
        const payload = new Uint8Array(readFileSync(file === undefined || file === "-" ? 0 : file));
        if (payload.length === 0) throw new Error("nothing to submit: the entry is empty");
        const t = token(o);
        const client = new VellumClient({ url: o.url, ...(t === undefined ? {} : { token: t }) });
        if (o.lines === true) {
          await submitLines(client, payload, o.idempotencyKey, o.out);
          return;
        }
        const r = await client.submit(
          payload,
          o.idempotencyKey === undefined ? {} : { idempotencyKey: o.idempotencyKey },
        );
        if (o.out !== undefined) writeFileSync(o.out, r.receipt);
        else process.stdout.write(r.receipt);
        const by = r.submitter === undefined ? "" : `, submitted by token ${r.submitter}`;
        process.stderr.write(
          `${r.duplicate ? "already in the log" : "logged"}: index ${r.index}, id ${r.id}, ${new Date(r.timestamp).toISOString()}${by}, tree size ${r.treeSize}${r.witnessed ? "" : " (not yet witnessed)"}\n`,
        );
      },
    );

  program
    .command("verify <receipt>")
    .description(
      "verify a receipt offline with the log's public key (and a witness policy, and the entry)",
    )
    .requiredOption("--key <vkey>", "the log's verifier key, or a file holding it (DATA/log.vkey)")
    .option("--policy <file>", "C2SP tlog-policy: the checkpoint must meet its witness quorum")
    .option("--entry <file>", "the entry's payload: proves the receipt is for exactly these bytes")
    .option(
      "--lines",
      "the receipt file holds one JSON object per line, as `vellum submit --lines` writes; " +
        "--entry is then the file that was submitted, and each receipt must be for its line",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  npx vellum verify login.tlog-proof --key vellum-data/log.vkey --entry login.json\n" +
        "  npx vellum verify --lines audit.receipts.jsonl --entry audit.jsonl --key vellum-data/log.vkey\n",
    )
    .action(
      (
        receiptFile: string,
        o: { key: string; policy?: string; entry?: string; lines?: boolean },
      ) => {
        if (o.lines === true) {
          verifyLines(receiptFile, o);
          return;
        }
        verifyOne(receiptFile, o);
      },
    );

  program
    .command("inspect")
    .description(
      "show a log's size, checkpoint, timestamp and witnesses (verifying the checkpoint with --key)",
    )
    .option("--url <url>", "the log server (env VELLUM_URL)", DEFAULT_URL)
    .option(
      "--key <vkey>",
      "the log's verifier key (or a file holding it) to verify the checkpoint",
    )
    .addHelpText(
      "after",
      "\nExample:\n  npx vellum inspect --url http://127.0.0.1:6962 --key vellum-data/log.vkey\n",
    )
    .action(async (o: { url: string; key?: string }) => {
      const client = new VellumClient({ url: o.url, retries: 1 });
      const info = (await client.logInfo()) as {
        origin: string;
        treeSize: number;
        publishedSize: number | null;
        checkpointTime: number;
        verifierKey: string;
        status: string;
        dedup?: string;
        witnesses: { name: string; cosignedSize: number | null; lastError: string | null }[];
      };
      const note = await client.checkpoint();
      let verified = "not verified (pass --key)";
      if (o.key !== undefined) {
        const key = readKeyArg(o.key);
        const cp = openCheckpoint(note, verifierFromKey(key)).checkpoint;
        verified = `verified with ${key.split("+")[0]}+${key.split("+")[1]} (size ${cp.size})`;
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
