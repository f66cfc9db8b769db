/**
 * @module
 * `vellum submit`: an entry (a file or standard input), `--lines` of JSON entries, or structured
 * audit events (`--event`), and their receipts.
 */
import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import type { Command } from "commander";
import { type SubmitResult, VellumClient } from "../../client/http.js";
import { base64Encode } from "../../core/bytes.js";
import { MAX_PAYLOAD_SIZE } from "../../core/entry.js";
import {
  type ConnectionFlags,
  connectionOptions,
  explainUnauthenticated,
  resolveConnection,
} from "../connection.js";
import { exitCodesHelp, usageError } from "../exit-codes.js";

import { printJson, readInput, someLines, splitLines } from "./io.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Refuses a JSON Lines input with lines that are not JSON, before anything is sent, naming them.
 * (`--raw` skips this: each line is logged as the bytes it is.)
 */
function checkJsonLines(lines: readonly { line: number; payload: Uint8Array }[]): void {
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
  o: { idempotencyKey?: string; out?: string; raw?: boolean; json?: boolean; event?: boolean },
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
      // Events are sent as JSON and logged as their canonical bytes (their uids their keys).
      const results =
        o.event === true
          ? await client.eventBatch(chunk.map(({ payload }) => JSON.parse(utf8.decode(payload))))
          : await client.submitBatch(
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

/** The event in a file: one JSON object (the server checks it against its OCSF class). */
function parseEvent(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch (e) {
    throw usageError(`the event is not JSON (${(e as Error).message}); nothing was submitted`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw usageError("an event is one JSON object; nothing was submitted");
  }
  return value as Record<string, unknown>;
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

export function registerSubmit(program: Command): void {
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
      "--event",
      "the input is a structured audit event (OCSF 1.8.0 JSON; with --lines, one event per line): " +
        "checked by the server against its class and logged as its canonical JSON (spec/audit.md)",
    )
    .option(
      "--json",
      "print the answer as one JSON document (index, id, timestamp, submitter, leafHash, treeSize, duplicate, witnessed, checkpoint, receipt); with --lines, the summary on standard error is JSON",
    )
    .addHelpText(
      "after",
      '\nExamples:\n  echo \'{"user":"alice","action":"login"}\' | npx vellum submit --out login.tlog-proof\n' +
        "  npx vellum submit --event invoice-update.json --out invoice-update.tlog-proof\n" +
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
          event?: boolean;
        },
      ) => {
        if (o.raw === true && o.lines !== true) throw usageError("--raw goes with --lines");
        if (o.raw === true && o.event === true) throw usageError("--raw cannot go with --event");
        if (o.event === true && o.lines === true && o.idempotencyKey !== undefined) {
          throw usageError(
            "--idempotency-key does not go with --event --lines (each event's metadata.uid is its key)",
          );
        }
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
          const key = o.idempotencyKey === undefined ? {} : { idempotencyKey: o.idempotencyKey };
          const r =
            o.event === true
              ? await client.event(parseEvent(payload), key)
              : await client.submit(payload, key);
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
}
