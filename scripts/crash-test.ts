/**
 * Crash test of the log engine on LevelDB (spec/storage.md, "Crash model and order of
 * durability"): a SIGKILL at any moment may cost work nobody was answered for, never an
 * acknowledged entry, a receipt, or the consistency of the log's history.
 *
 *   npm run crash-test -- [--kills N] [--seconds S] [--dir D] [--keep] [--http]
 *   node --import tsx scripts/crash-test.ts [--kills N] [--seconds S] [--dir D] [--keep] [--http]
 *
 * --http puts the real HTTP API between the workload and the log: the child serves it and this
 * process submits over 127.0.0.1 (single entries and multiproof batches through the SDK).
 *
 * How: a child (scripts/lib/crash-child.ts) appends under load and prints one line per receipt;
 * 50-400 ms after it says "ready" this process kills it with SIGKILL. Acknowledged means a
 * complete line this process read: the child writes it after its submit resolved, and a line still
 * in the pipe at the kill counts, a cut-off last line does not. Then this process reopens the log
 * itself (passing the newest checkpoint it saw as DATA/checkpoint would be, the rollback guard)
 * and checks, before starting the next child:
 *   1. every receipt verifies offline with the log's public key (verifyTlogProof), and the leaf
 *      rebuilt from the payload and the receipt's extra is the leaf it proves (and the leaf hash
 *      the extra carries, if any);
 *   2. every entry ever acknowledged, in this or an earlier run, is stored at its acknowledged
 *      index with the same leaf hash, id and timestamp; a payload acknowledged twice (duplicates,
 *      idempotency keys) got the same index both times;
 *   3. the whole log, read back: every entry is a payload the workload submitted, no payload is
 *      stored twice, ids and timestamps never decrease, and the tree re-derived from all leaves
 *      has the root of the latest checkpoint;
 *   4. every checkpoint seen (in receipts, on reopening, those the reopening itself signed) is
 *      signed, and in size order each one is consistent with the one before (a consistency proof
 *      from the reopened log, checked with verifyConsistency), sizes never shrink and timestamps
 *      never go back, across all runs; none is newer than the checkpoint the log reopens with;
 *   5. reopening signs nothing: a batch and its checkpoint are one atomic write, so the stored
 *      tree always has its checkpoint (a reopen that must sign one means they were not).
 * It stops after N kills or S seconds, whichever comes first, and prints one summary line: kills,
 * entries in the log, distinct acknowledged entries (each re-checked after every later kill),
 * receipts verified, checkpoints checked, reopens that took an unfinished batch back out (its own
 * write landed before the kill, its leaves write did not: spec/storage.md) and the time. It exits 1 with the first violation. The child is killed if this process exits; the temporary directory
 * (under D, default the OS temp dir) is removed unless --keep.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { databasePaths, openEmbeddedDatabases } from "../src/cli/embedded-db.js";
import { type SubmitResult, VellumClient } from "../src/client/http.js";
import { base64Encode, bytesEqual } from "../src/core/bytes.js";
import { openCheckpoint } from "../src/core/checkpoint.js";
import { CompactRange } from "../src/core/compact.js";
import { cosignatureVerifier } from "../src/core/cosignature.js";
import { decodeLeaf, decodeLeafFields, formatUuid, leafFromFields } from "../src/core/entry.js";
import { verifierFromKey } from "../src/core/keys.js";
import { hashLeaf } from "../src/core/rfc6962.js";
import { parseTlogProof, verifyTlogProof } from "../src/core/tlog-proof.js";
import { verifyConsistency } from "../src/core/verify.js";
import { Log } from "../src/log/log.js";
import { CheckpointSigner } from "../src/log/signer.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import {
  type AckLine,
  keyFor,
  NAMESPACE,
  ORIGIN,
  payloadFor,
  READY,
  SEED,
  seedOf,
  seedPicker,
} from "./lib/crash-workload.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CHILD = fileURLToPath(new URL("./lib/crash-child.ts", import.meta.url));
const KILL_AFTER_MS = [50, 400] as const;
const KILL_AFTER_MS_HTTP = [150, 1200] as const;
const HTTP_CONCURRENCY = 64;
const STARTUP_MS = 30_000;
/** Entries read per range when re-deriving the tree. */
const CHUNK = 4096;

installNodeCrypto();
// Verification uses the public key only, as anyone holding DATA/log.vkey would.
const { verifierKey, publicKey } = new CheckpointSigner(ORIGIN, SEED);
const LOG_KEY = verifierFromKey(verifierKey);
const TIME_KEY = cosignatureVerifier(ORIGIN, publicKey);

class Violation extends Error {}

function fail(message: string): never {
  throw new Violation(message);
}

const why = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface Acked {
  readonly seed: string;
  readonly id: string;
  readonly timestamp: number;
  readonly leafHash: string;
}

interface Seen {
  readonly note: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly time: number;
}

/** What the parent knows across runs. */
class History {
  /** Every acknowledged entry, by index. */
  readonly acked = new Map<number, Acked>();
  /** The index each acknowledged payload (by seed) got. */
  readonly ackedSeeds = new Map<string, number>();
  /** The newest checkpoint checked so far. */
  last: Seen | undefined;
  /** Checkpoints the parent's own reopen signed after its checks; checked on the next reopen. */
  carried: string[] = [];
  kills = 0;
  /** Reopens that took an unfinished batch back out (its own write landed, its leaves not). */
  undone = 0;
  entries = 0;
  receipts = 0;
  checkpoints = 0;
}

// ---------------------------------------------------------------------------------------------
// One run of the child

let current: ChildProcess | undefined;

/**
 * The HTTP workload (--http): HTTP_CONCURRENCY clients submit to the child's server until it
 * dies, one entry per request or a batch of 2-20 (`submitBatch`: multiproof answers, receipts
 * rebuilt by the SDK), and record each answer they receive in full as an AckLine. No retries: a
 * request cut by the kill is simply not acknowledged. An error while the server is alive fails
 * the test.
 */
async function httpLoad(
  url: string,
  token: string,
  run: number,
  lines: string[],
  alive: () => boolean,
): Promise<string | undefined> {
  const client = new VellumClient({ url, token, retries: 0, timeoutMs: 20_000 });
  const pick = seedPicker(run);
  const item = (s: string) => {
    const key = keyFor(s);
    return key === undefined
      ? { payload: payloadFor(s) }
      : { payload: payloadFor(s), idempotencyKey: key };
  };
  const record = (s: string, r: SubmitResult) => {
    const line: AckLine = {
      s,
      index: r.index,
      id: r.id,
      timestamp: r.timestamp,
      leafHash: base64Encode(r.leafHash),
      duplicate: r.duplicate,
      proof: r.receipt,
    };
    lines.push(JSON.stringify(line));
  };
  let problem: string | undefined;
  const worker = async (): Promise<void> => {
    while (alive() && problem === undefined) {
      try {
        if (Math.random() < 0.7) {
          const s = pick();
          const { payload, idempotencyKey } = item(s);
          record(
            s,
            await client.submit(payload, idempotencyKey === undefined ? {} : { idempotencyKey }),
          );
        } else {
          const seeds = Array.from({ length: 2 + Math.floor(Math.random() * 19) }, pick);
          const results = await client.submitBatch(seeds.map(item));
          for (const [i, r] of results.entries()) record(seeds[i]!, r);
        }
      } catch (e) {
        if (alive())
          problem ??= `HTTP submission failed while the server was up: ${(e as Error).message}`;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: HTTP_CONCURRENCY }, worker));
  return problem;
}

/**
 * Starts a child, kills it 50-400 ms after it is ready (150-1200 ms with --http, where the load
 * starts after "ready"); returns the acknowledged lines: the complete lines it printed, or with
 * --http the answers the HTTP clients received.
 */
async function runChild(dbDir: string, run: number, http: boolean): Promise<string[]> {
  const args = ["--import", "tsx", CHILD, dbDir, String(run), ...(http ? ["http"] : [])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  current = child;
  const lines: string[] = [];
  const httpLines: string[] = [];
  let load: Promise<string | undefined> | undefined;
  let partial = "";
  let stderr = "";
  let ready = false;
  let killed = false;
  const kill = () => {
    killed = true;
    child.kill("SIGKILL");
  };
  const startup = setTimeout(() => child.kill("SIGKILL"), STARTUP_MS);
  let timer: ReturnType<typeof setTimeout> | undefined;
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      if (ready) {
        lines.push(line);
      } else if (line === READY || line.startsWith(`${READY} `)) {
        ready = true;
        clearTimeout(startup);
        const [lo, hi] = http ? KILL_AFTER_MS_HTTP : KILL_AFTER_MS;
        timer = setTimeout(kill, lo + Math.random() * (hi - lo));
        if (http) {
          const [, port, token] = line.split(" ");
          load = httpLoad(`http://127.0.0.1:${port}`, token!, run, httpLines, () => !killed);
        }
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString("utf8")).slice(-4000);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s])),
  );
  clearTimeout(startup);
  clearTimeout(timer);
  current = undefined;
  const status = signal ?? `exit code ${code}`;
  if (!ready) fail(`child ${run} never got ready (${status}); its stderr:\n${stderr}`);
  if (!killed || signal !== "SIGKILL") {
    fail(`child ${run} stopped by itself before the kill (${status}); its stderr:\n${stderr}`);
  }
  if (!http) return lines;
  const problem = await load;
  if (problem !== undefined) fail(`run ${run}: ${problem}`);
  return httpLines;
}

// ---------------------------------------------------------------------------------------------
// Checks after a kill

/** Opens a checkpoint with the log's public key; its time is that of the timestamp signature. */
function openSeen(note: string, where: string): Seen {
  let opened: ReturnType<typeof openCheckpoint>;
  try {
    opened = openCheckpoint(note, LOG_KEY, [TIME_KEY]);
  } catch (e) {
    fail(`${where}: the checkpoint does not verify: ${why(e)}`);
  }
  const time = opened.signatures.find((s) => s.timestamp !== undefined)?.timestamp;
  if (time === undefined) fail(`${where}: the checkpoint has no timestamp signature`);
  const { size, rootHash } = opened.checkpoint;
  return { note, size, rootHash, time };
}

const label = (c: Seen) => `size ${c.size} at ${c.time}`;

/** Check 1 and the bookkeeping for check 2: each receipt, offline. Returns their checkpoints. */
function checkReceipts(lines: string[], h: History): Set<string> {
  const notes = new Set<string>();
  for (const line of lines) {
    let ack: AckLine;
    try {
      ack = JSON.parse(line) as AckLine;
    } catch {
      fail(`the child printed an unreadable line: ${line.slice(0, 200)}`);
    }
    const what = `receipt for ${ack.s} at index ${ack.index}`;
    const payload = payloadFor(ack.s);
    let leafHash: Uint8Array;
    try {
      const parsed = parseTlogProof(ack.proof);
      if (parsed.extra === undefined) fail(`${what} has no extra`);
      leafHash = hashLeaf(leafFromFields(parsed.extra, payload));
      const fields = decodeLeafFields(parsed.extra);
      if (formatUuid(fields.id) !== ack.id || fields.timestamp !== ack.timestamp) {
        fail(`${what}: its extra names another id or timestamp than the receipt`);
      }
      if (fields.leafHash !== undefined && !bytesEqual(fields.leafHash, leafHash)) {
        fail(`${what}: its extra names another leaf hash than the payload's leaf`);
      }
      const verified = verifyTlogProof(ack.proof, leafHash, LOG_KEY);
      if (verified.index !== ack.index) fail(`${what} proves index ${verified.index}`);
      notes.add(parsed.checkpoint);
    } catch (e) {
      if (e instanceof Violation) throw e;
      fail(`${what} does not verify: ${why(e)}\nthe receipt line:\n${line}`);
    }
    if (base64Encode(leafHash) !== ack.leafHash) {
      fail(`${what}: the leaf rebuilt from the payload and extra is not the receipt's leaf`);
    }
    const before = h.acked.get(ack.index);
    if (before !== undefined && before.leafHash !== ack.leafHash) {
      fail(`index ${ack.index} was acknowledged for ${before.seed} and later for ${ack.s}`);
    }
    const seedIndex = h.ackedSeeds.get(ack.s);
    if (seedIndex !== undefined && seedIndex !== ack.index) {
      fail(`payload ${ack.s} was acknowledged at index ${seedIndex} and later at ${ack.index}`);
    }
    const { s: seed, id, timestamp } = ack;
    h.acked.set(ack.index, { seed, id, timestamp, leafHash: ack.leafHash });
    h.ackedSeeds.set(ack.s, ack.index);
    h.receipts++;
  }
  return notes;
}

/** Checks 2 and 3: every stored entry, every acknowledged one, and the re-derived root. */
async function checkEntries(log: Log, latest: Seen, h: History): Promise<void> {
  const size = latest.size;
  for (const [index, ack] of h.acked) {
    if (index >= size) {
      fail(`acknowledged entry ${index} (${ack.seed}) is gone: the log reopened with ${size}`);
    }
  }
  const range = CompactRange.empty();
  const seeds = new Map<string, number>();
  let lastId = "";
  let lastTime = 0;
  for (let start = 0; start < size; start += CHUNK) {
    const rows = await log.entries(start, CHUNK);
    const want = Math.min(CHUNK, size - start);
    if (rows.length !== want) fail(`entries from ${start}: read ${rows.length}, expected ${want}`);
    for (const [k, row] of rows.entries()) {
      const index = start + k;
      const leafHash = hashLeaf(row.leaf);
      range.append(leafHash);
      const { id, timestamp, payload } = decodeLeaf(row.leaf);
      const idText = formatUuid(id);
      const seed = seedOf(payload);
      if (!bytesEqual(payload, payloadFor(seed))) {
        fail(`entry ${index} holds a payload the workload never submitted`);
      }
      const twin = seeds.get(seed);
      if (twin !== undefined) fail(`payload ${seed} is stored twice, at ${twin} and ${index}`);
      seeds.set(seed, index);
      if (idText <= lastId || timestamp < lastTime) {
        fail(`entry ${index}: its id or timestamp is below entry ${index - 1}'s`);
      }
      lastId = idText;
      lastTime = timestamp;
      const ack = h.acked.get(index);
      if (
        ack !== undefined &&
        (ack.leafHash !== base64Encode(leafHash) ||
          ack.id !== idText ||
          ack.timestamp !== timestamp)
      ) {
        fail(`acknowledged entry ${index} (${ack.seed}) was replaced by ${seed} (${idText})`);
      }
    }
  }
  if (!bytesEqual(range.root(), latest.rootHash)) {
    fail(`the tree re-derived from all ${size} entries does not have the checkpoint's root`);
  }
  h.entries = size;
}

/** Check 4: the checkpoints seen, in order, each consistent with the one before. */
async function checkHistory(log: Log, seen: Seen[], latest: Seen, h: History): Promise<void> {
  for (const c of seen) {
    if (c.size > latest.size || c.time > latest.time) {
      fail(`checkpoint ${label(c)} was seen, but the log reopened at ${label(latest)}`);
    }
  }
  const chain = [...(h.last === undefined ? [] : [h.last]), ...seen];
  if (!seen.some((c) => c.note === latest.note)) chain.push(latest);
  for (let i = 1; i < chain.length; i++) {
    const a = chain[i - 1]!;
    const b = chain[i]!;
    if (b.size < a.size) fail(`checkpoint ${label(b)} follows ${label(a)}: the tree shrank`);
    if (b.time < a.time) fail(`checkpoint ${label(b)} follows ${label(a)}: time went back`);
    try {
      const proof = await log.consistencyProof(a.size, b.size);
      verifyConsistency(a.size, b.size, proof, a.rootHash, b.rootHash);
    } catch (e) {
      fail(`checkpoint ${label(b)} is not consistent with ${label(a)}: ${why(e)}`);
    }
  }
  h.checkpoints += chain.length - (h.last === undefined ? 0 : 1);
  h.last = chain.at(-1);
}

/** Reopens the log after a kill and runs every check. */
async function checkAfterKill(dataDir: string, lines: string[], h: History): Promise<void> {
  const notes = checkReceipts(lines, h);
  for (const note of h.carried) notes.add(note);
  const seen = [...notes]
    .map((note) => openSeen(note, "a checkpoint seen before the kill"))
    .sort((a, b) => a.size - b.size || a.time - b.time);
  const newest = seen.at(-1) ?? h.last;

  const dbs = await openEmbeddedDatabases(databasePaths(dataDir));
  const published: string[] = [];
  let log: Log | undefined;
  try {
    try {
      log = await Log.open({
        origin: ORIGIN,
        seed: SEED,
        ...dbs.place(NAMESPACE),
        checkpointIntervalMs: 0,
        ...(newest === undefined ? {} : { lastPublished: newest.note }),
        onCheckpoint: (cp) => published.push(cp.note),
        onBatchUndone: () => h.undone++,
      });
    } catch (e) {
      fail(`the log does not reopen: ${why(e)}`);
    }
    if (published.length > 0) {
      fail(
        `reopening signed a checkpoint (size ${openSeen(published[0]!, "the reopen's").size}) for entries stored without one: the batch and its checkpoint were not one atomic write`,
      );
    }
    const latest = openSeen(log.checkpoint.note, "the reopened log");
    await checkEntries(log, latest, h);
    await checkHistory(log, seen, latest, h);
  } finally {
    await log?.close();
    await dbs.close();
  }
  h.carried = published;
}

// ---------------------------------------------------------------------------------------------

function options() {
  const { values } = parseArgs({
    options: {
      kills: { type: "string", default: "30" },
      seconds: { type: "string", default: "120" },
      dir: { type: "string", default: tmpdir() },
      keep: { type: "boolean", default: false },
      http: { type: "boolean", default: false },
    },
  });
  const kills = Number(values.kills);
  const seconds = Number(values.seconds);
  if (!Number.isSafeInteger(kills) || kills < 1) throw new Error("--kills must be an integer ≥ 1");
  if (!(seconds > 0)) throw new Error("--seconds must be a positive number");
  return { kills, seconds, dir: values.dir, keep: values.keep, http: values.http };
}

async function main(): Promise<number> {
  const opts = options();
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const work = mkdtempSync(join(opts.dir, "vellum-crash-"));
  const dataDir = join(work, "data");
  process.on("exit", () => {
    current?.kill("SIGKILL");
    if (opts.keep) console.log(`crash-test: kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      console.error(`crash-test: ${signal}, stopping`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  // The loop is bounded by the budget; this bounds a hung child or check as well.
  setTimeout(
    () => {
      console.error(`crash-test: FAIL: still running ${opts.seconds + 120} s after starting`);
      process.exit(1);
    },
    (opts.seconds + 120) * 1000,
  ).unref();

  const h = new History();
  try {
    while (h.kills < opts.kills && elapsed() < opts.seconds) {
      const lines = await runChild(dataDir, h.kills, opts.http);
      h.kills++;
      const before = h.receipts;
      await checkAfterKill(dataDir, lines, h);
      console.log(
        `kill ${h.kills}: ${h.receipts - before} receipts, log size ${h.entries}, ${elapsed().toFixed(1)} s`,
      );
    }
  } catch (e) {
    if (!(e instanceof Violation)) throw e;
    console.error(`crash-test: FAIL after ${h.kills} kills: ${e.message}`);
    if (!opts.keep) console.error("crash-test: rerun with --keep to inspect the data directory");
    return 1;
  }
  console.log(
    `crash-test: PASS kills=${h.kills} entries=${h.entries} acknowledged=${h.acked.size} ` +
      `receipts=${h.receipts} checkpoints=${h.checkpoints} undone=${h.undone} elapsed=${elapsed().toFixed(1)}s`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`crash-test: ERROR: ${e instanceof Error ? (e.stack ?? e.message) : e}`);
    process.exit(2);
  },
);
