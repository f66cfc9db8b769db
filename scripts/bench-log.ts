/**
 * Benchmarks of the log engine (src/log/log.ts) on LevelDB, against a ceiling measured in the
 * same run on the same disk:
 *
 * 1. Ceiling: raw node:crypto SHA-256 of leaves shaped like the engine's, and raw `level` chained
 *    batches written with `{ sync: true }` holding the records a sequenced entry needs (entry,
 *    id, leaf-hash and payload-hash indexes; full strata amortised), in batches of the engine's
 *    size. Then the engine's sustained rate: many concurrent in-process submitters, default
 *    settings (every batch synced, a signed checkpoint per batch), and its ratio to the ceiling.
 * 2. Latency: submit → receipt with its inclusion proof, open-loop at a fixed offered rate
 *    (submissions scheduled on a timer, latency counted from the scheduled time so a stalled
 *    process cannot hide its own delay), for several `batchMaxAgeMs`.
 * 3. Scale (--scale): the same throughput run at 10,000,000 entries; RSS along the way and bytes
 *    on disk per entry, to check the rate and memory stay flat in the log's size.
 *
 *   npm run bench:log                     # ceiling, 1M entries, latency (~1.5 min)
 *   npm run bench:log -- --scale          # also 10M entries (several minutes, ~5 GB of disk)
 *   npm run bench:log -- --only throughput --entries 300000     # e.g. under --cpu-prof
 *
 * Options: --entries N (main throughput run, default 1,000,000), --chunk N (entries per
 * submitMany call, default 256; 1 = one submit() per entry), --scale and --scale-entries N
 * (default 10,000,000), --concurrency N (default 4 × batchMaxEntries), --batch-max-entries N,
 * --ceiling-entries N, --latency-rate N, --latency-seconds N, --ages 0,1,5, --rounds N, --only
 * ceiling,throughput,latency,scale, --dedup key|payload (the throughput run's dedup rule; default
 * the engine's default for new logs, "key": no payload hashing, lookups or index writes),
 * --warmup-entries N (default 100,000, appended to a throwaway log before each throughput run's
 * clock starts, so that the engine's code is compiled; 0: measure from a cold start).
 *
 * Databases live in temporary directories under os.tmpdir(), deleted when done (or on Ctrl-C).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Level } from "level";
import { databasePaths, openEmbeddedDatabases } from "../src/cli/embedded-db.js";
import { encodeLeaf } from "../src/core/entry.js";
import { VellumError } from "../src/core/errors.js";
import { parseDedup } from "../src/log/dedup.js";
import { DEFAULTS, Log } from "../src/log/log.js";
import { CheckpointSigner } from "../src/log/signer.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { namespacePrefix } from "../src/storage/namespace.js";
import { bench, formatRate, machine } from "./lib/bench.js";
import { SERVER_NODE_FLAGS } from "./lib/vellum-process.js";

installNodeCrypto();

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    entries: { type: "string", default: "1000000" },
    scale: { type: "boolean", default: false },
    "scale-entries": { type: "string", default: "10000000" },
    concurrency: { type: "string" },
    "batch-max-entries": { type: "string" },
    chunk: { type: "string" },
    "ceiling-entries": { type: "string", default: "300000" },
    "warmup-entries": { type: "string", default: "100000" },
    "latency-rate": { type: "string", default: "1000" },
    "latency-seconds": { type: "string", default: "10" },
    ages: { type: "string", default: "0,1,5" },
    rounds: { type: "string", default: "1" },
    only: { type: "string" },
    dedup: { type: "string" },
  },
});

function count(name: string, text: string): number {
  const n = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const ENTRIES = count("entries", args.entries);
/** The engine's dedup rule (src/log/dedup.ts): its default for new logs ("key") unless given. */
const DEDUP = args.dedup === undefined ? undefined : parseDedup(args.dedup, "--dedup");
const SCALE_ENTRIES = count("scale-entries", args["scale-entries"]);
/** The engine's batch size (its default unless --batch-max-entries); the ceiling uses the same. */
const BATCH = count(
  "batch-max-entries",
  args["batch-max-entries"] ?? String(DEFAULTS.batchMaxEntries),
);
/** Enough closed-loop submitters to keep a full batch queued behind the two in flight. */
const CONCURRENCY = count("concurrency", args.concurrency ?? String(4 * BATCH));
/**
 * Entries per call in the throughput runs: with N > 1 each submitter hands the log N entries at
 * once through Log.submitMany (where the engine has it); with 1, one submit() per entry.
 */
const CHUNK_OPTION = args.chunk === undefined ? undefined : count("chunk", args.chunk);
const WARMUP_ENTRIES =
  args["warmup-entries"] === "0" ? 0 : count("warmup-entries", args["warmup-entries"]);
const CEILING_ENTRIES = count("ceiling-entries", args["ceiling-entries"]);
const LATENCY_RATE = count("latency-rate", args["latency-rate"]);
const LATENCY_SECONDS = count("latency-seconds", args["latency-seconds"]);
/** Latency rounds: each runs every age once, interleaved, so drifting load hits all alike. */
const ROUNDS = count("rounds", args.rounds);
const AGES = args.ages.split(",").map((s) => {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error("--ages must be integers ≥ 0");
  return n;
});
const PHASES = new Set((args.only ?? "ceiling,throughput,latency,scale").split(","));
/** The 10M run happens only when asked for: --scale, or --only naming it. */
const runs = (phase: string) =>
  PHASES.has(phase) && (phase !== "scale" || args.scale || args.only !== undefined);

const ORIGIN = "bench.example/log";
const SEED = new Uint8Array(32).fill(7);

// ---------------------------------------------------------------------------------------------
// Temporary directories, removed however the run ends

const tempDirs = new Set<string>();

function makeTempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vellum-bench-${label}-`));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

process.on("exit", () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
process.on("SIGINT", () => {
  console.log("\ninterrupted: removing temporary databases");
  process.exit(130);
});

/** Bytes of the files under `dir`: as listed (apparent) and as allocated on disk (du). */
/**
 * What LevelDB wrote besides its write-ahead log, from its own LOG files (LOG, LOG.old): bytes
 * flushed from memtables to level-0 tables, bytes written by compactions (by input level), and
 * tables moved down a level without rewriting. Compaction is the work that grows with a log's
 * size; this says how much of it there was.
 */
/**
 * A data directory's two databases, as the server opens them (src/cli/embedded-db.ts): DATA/db
 * and DATA/entries, where a new log keeps its leaves.
 */
const openDataDirDatabases = (dir: string) => openEmbeddedDatabases(databasePaths(dir));

function levelDbWork(dir: string): {
  flushed: number;
  compacted: Map<number, number>;
  moved: number;
} {
  let flushed = 0;
  let moved = 0;
  const compacted = new Map<number, number>();
  const logs = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => f === "LOG" || f.startsWith("LOG.old"))
    : [];
  for (const name of logs) {
    for (const line of fs.readFileSync(path.join(dir, name), "utf8").split("\n")) {
      let m = /Level-0 table #\d+: (\d+) bytes OK/.exec(line);
      if (m) flushed += Number(m[1]);
      m = /Compacted \d+@(\d+) \+ \d+@\d+ files => (\d+) bytes/.exec(line);
      if (m) compacted.set(Number(m[1]), (compacted.get(Number(m[1])) ?? 0) + Number(m[2]));
      if (/Moved #\d+ to level-\d/.test(line)) moved++;
    }
  }
  return { flushed, compacted, moved };
}

function diskUsage(dir: string): { apparent: number; allocated: number } {
  let apparent = 0;
  let allocated = 0;
  for (const name of fs.readdirSync(dir, { recursive: true })) {
    const st = fs.statSync(path.join(dir, String(name)));
    if (!st.isFile()) continue;
    apparent += st.size;
    allocated += st.blocks * 512;
  }
  return { apparent, allocated };
}

// ---------------------------------------------------------------------------------------------
// Payloads: small JSON audit events of 100–300 bytes, unique by a stamped sequence number

/** mulberry32: a small deterministic PRNG, so every run submits the same payload shapes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEQ_DIGITS = 10;
const SEQ_MARK = "#".repeat(SEQ_DIGITS);

interface Template {
  readonly bytes: Uint8Array;
  /** Offset of the sequence number's digits. */
  readonly at: number;
}

function makeTemplates(n: number): Template[] {
  const rnd = prng(20240601);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const actions = [
    "user.login",
    "user.logout",
    "user.mfa.challenge",
    "document.read",
    "document.update",
    "document.delete",
    "role.grant",
    "role.revoke",
    "api_key.create",
    "api_key.rotate",
    "payment.refund",
    "export.start",
    "settings.change",
  ];
  const tenants = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];
  const names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"];
  const kinds = ["documents", "projects", "invoices", "users", "keys", "reports"];
  const outcomes = ["success", "success", "success", "denied", "error"];
  const agents = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "vellum-sdk/0.1", "okhttp/4.12"];
  const out: Template[] = [];
  while (out.length < n) {
    const event: Record<string, unknown> = {
      v: 1,
      seq: SEQ_MARK,
      ts: new Date(1_717_200_000_000 + Math.floor(rnd() * 1e9)).toISOString(),
      tenant: pick(tenants),
      actor: `${pick(names)}@${pick(tenants)}.example`,
      action: pick(actions),
      target: `${pick(kinds)}/${Math.floor(rnd() * 1e8).toString(36)}`,
      outcome: pick(outcomes),
    };
    if (rnd() < 0.6) event.ip = `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.7`;
    if (rnd() < 0.5) event.ua = pick(agents);
    if (rnd() < 0.5) event.request = crypto.randomBytes(8).toString("hex");
    if (rnd() < 0.4) event.reason = "ticket OPS-".concat(String(Math.floor(rnd() * 99999)));
    if (rnd() < 0.3)
      event.fields = ["email", "role", "quota", "name"].slice(0, 1 + (out.length % 4));
    const text = JSON.stringify(event);
    if (text.length < 100 || text.length > 300) continue;
    out.push({ bytes: new TextEncoder().encode(text), at: text.indexOf(SEQ_MARK) });
  }
  return out;
}

const TEMPLATES = makeTemplates(4096);

/** Writes `seq` as zero-padded decimal digits at `at`. */
function stamp(buf: Uint8Array, at: number, seq: number): void {
  let v = seq;
  for (let i = SEQ_DIGITS - 1; i >= 0; i--) {
    buf[at + i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
}

/** A fresh payload for entry number `seq` (distinct seq, distinct payload). */
function payload(seq: number): Uint8Array {
  const t = TEMPLATES[seq % TEMPLATES.length]!;
  const out = new Uint8Array(t.bytes.length);
  out.set(t.bytes);
  stamp(out, t.at, seq);
  return out;
}

/**
 * Payloads `first` .. `first + n - 1` (as payload() makes them), as views of one buffer: one
 * allocation per chunk rather than one per payload, as a server's request bodies are views of the
 * buffers its sockets read into. Making each its own Uint8Array (an ArrayBuffer of its own, kept
 * off V8's heap) cost the engine's thread about as much per entry as a SHA-256 hash; the ceiling
 * leaves payload generation out, and the throughput run keeps it, at this cost.
 */
function payloads(first: number, n: number): Uint8Array[] {
  let total = 0;
  for (let k = 0; k < n; k++) total += TEMPLATES[(first + k) % TEMPLATES.length]!.bytes.length;
  const buf = new Uint8Array(total);
  const out: Uint8Array[] = new Array(n);
  let at = 0;
  for (let k = 0; k < n; k++) {
    const t = TEMPLATES[(first + k) % TEMPLATES.length]!;
    buf.set(t.bytes, at);
    stamp(buf, at + t.at, first + k);
    out[k] = buf.subarray(at, at + t.bytes.length);
    at += t.bytes.length;
  }
  return out;
}

const payloadSizes = TEMPLATES.map((t) => t.bytes.length);
const AVG_PAYLOAD = payloadSizes.reduce((a, b) => a + b, 0) / payloadSizes.length;

// ---------------------------------------------------------------------------------------------
// Formatting

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
const fmtMs = (ms: number) =>
  ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
const fmtMB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const line = (label: string, value: string) => console.log(`${label.padEnd(58)} ${value}`);

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** RSS split into V8 heap, buffers and the rest (native: LevelDB, malloc, code). */
function memoryText(m: NodeJS.MemoryUsage): string {
  const native = m.rss - m.heapTotal - m.arrayBuffers;
  const split = rssSplit();
  return (
    `rss ${fmtMB(m.rss)} = heap ${fmtMB(m.heapTotal)} (used ${fmtMB(m.heapUsed)})` +
    ` + buffers ${fmtMB(m.arrayBuffers)} + native/other ${fmtMB(native)}` +
    (split === undefined ? "" : `; anon ${fmtMB(split.anon)}, file-backed ${fmtMB(split.file)}`)
  );
}

/**
 * Resident memory split into anonymous (the process's own allocations) and file-backed pages
 * (Linux, /proc/self/status). LevelDB reads its table files through mmap, so the pages it reads
 * count in RSS as file-backed: clean page cache the kernel reclaims at will, and naturally
 * proportional to the data touched. "Flat in the log's size" is a property of the anonymous part.
 */
function rssSplit(): { anon: number; file: number } | undefined {
  try {
    const status = fs.readFileSync("/proc/self/status", "utf8");
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
    const anon = kb("RssAnon");
    const file = kb("RssFile");
    return Number.isFinite(anon) && Number.isFinite(file) ? { anon, file } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU milliseconds of the main thread alone (Linux: /proc/self/task/<pid>/stat, in USER_HZ
 * ticks of 10 ms), or undefined elsewhere. Unlike event-loop utilisation, it does not count time
 * the thread was runnable but descheduled, so it stays meaningful on a loaded machine.
 */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime
  } catch {
    return undefined;
  }
}

/** Sums V8 GC pauses (main thread) while it runs; `stop()` returns total and longest, in ms. */
function trackGc(): { stop: () => { total: number; max: number; count: number } } {
  let total = 0;
  let max = 0;
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      total += e.duration;
      max = Math.max(max, e.duration);
      count++;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return {
    stop: () => {
      observer.disconnect();
      return { total, max, count };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1a. The ceiling: raw hashing and raw synced LevelDB batches

type Db = Level<Uint8Array, Uint8Array>;

async function openRaw(dir: string): Promise<Db> {
  // The same LevelDB settings as src/storage/level.ts uses by default.
  const db = new Level<Uint8Array, Uint8Array>(dir, {
    keyEncoding: "view",
    valueEncoding: "view",
    cacheSize: 32 * 1024 * 1024,
    writeBufferSize: 16 * 1024 * 1024,
  });
  await db.open();
  return db;
}

/** Leaves as the engine builds them (0x00 prefix + CBOR [1, id, timestamp, payload]). */
interface LeafSlot {
  readonly buf: Uint8Array;
  readonly seqAt: number;
}

function makeLeafSlots(n: number): LeafSlot[] {
  const slots: LeafSlot[] = [];
  for (let j = 0; j < n; j++) {
    const p = payload(j);
    const leaf = encodeLeaf({ id: crypto.randomBytes(16), timestamp: Date.now(), payload: p });
    const buf = new Uint8Array(1 + leaf.length);
    buf.set(leaf, 1);
    const t = TEMPLATES[j % TEMPLATES.length]!;
    slots.push({ buf, seqAt: 1 + leaf.length - p.length + t.at });
  }
  return slots;
}

const PREFIX = namespacePrefix("log");
const STRATUM_BYTES = 2 + 510 * 32;

/** Keys as the driver writes them: namespace prefix, tag, body (copied by the native batch). */
class KeyScratch {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  constructor(tag: number, bodyLength: number) {
    this.#buf = new Uint8Array(PREFIX.length + 1 + bodyLength);
    this.#view = new DataView(this.#buf.buffer);
    this.#buf.set(PREFIX);
    this.#buf[PREFIX.length] = tag;
  }
  with(body: Uint8Array): Uint8Array {
    this.#buf.set(body, PREFIX.length + 1);
    return this.#buf;
  }
  /** Body: u64 big-endian `index`, after `skip` bytes (a tile key's level byte). */
  withIndex(index: number, skip = 0): Uint8Array {
    this.#view.setBigUint64(PREFIX.length + 1 + skip, BigInt(index));
    return this.#buf;
  }
  withTile(level: number, index: number): Uint8Array {
    this.#buf[PREFIX.length + 1] = level;
    return this.withIndex(index, 1);
  }
}

interface CeilingResult {
  readonly rate: number;
  readonly putsPerEntry: number;
  readonly bytesPerEntry: number;
  /** CPU µs per entry: all threads, and the main thread alone (NaN where unknown). */
  readonly cpuMicros: number;
  readonly mainMicros: number;
}

/**
 * Writes `total` entries' records in synced chained batches of BATCH entries.
 * - "writes": leaf hashes are random stand-ins (no hashing);
 * - "serial": each batch's leaves are hashed, then it is written; nothing overlaps;
 * - "pipelined": batch n+1 is hashed and built while batch n's synced write is in flight (the
 *   engine's shape: one write at a time, the next batch prepared during it).
 */
async function ceilingRun(mode: "writes" | "serial" | "pipelined", total: number) {
  const dir = makeTempDir("ceiling");
  const db = await openRaw(dir);
  const slots = makeLeafSlots(BATCH);
  const keys = {
    entry: new KeyScratch(0x65, 8),
    id: new KeyScratch(0x69, 16),
    leaf: new KeyScratch(0x68, 32),
    payload: new KeyScratch(0x70, 32),
    tile: new KeyScratch(0x74, 9),
  };
  const state = new KeyScratch(0x73, 0).with(new Uint8Array(0));
  const stateValue = crypto.randomBytes(2 + 21 * 33);
  const stratum = crypto.randomBytes(STRATUM_BYTES);
  const random = new Uint8Array(BATCH * 80);
  const value = new Uint8Array(8);
  const valueView = new DataView(value.buffer);
  let puts = 0;
  let bytes = 0;

  const build = (first: number, n: number) => {
    crypto.randomFillSync(random); // ids, payload hashes (and leaf hashes in "writes")
    const batch = db.batch();
    for (let j = 0; j < n; j++) {
      const index = first + j;
      const slot = slots[j]!;
      stamp(slot.buf, slot.seqAt, index);
      const r = j * 80;
      const leafHash =
        mode === "writes"
          ? random.subarray(r + 48, r + 80)
          : (crypto.hash("sha256", slot.buf, "buffer") as unknown as Uint8Array);
      valueView.setBigUint64(0, BigInt(index));
      const leaf = slot.buf.subarray(1);
      batch.put(keys.entry.withIndex(index), leaf);
      batch.put(keys.id.with(random.subarray(r, r + 16)), value);
      batch.put(keys.leaf.with(leafHash), value);
      batch.put(keys.payload.with(random.subarray(r + 16, r + 48)), value);
      puts += 4;
      bytes += 4 * (PREFIX.length + 1) + 8 + leaf.length + 16 + 8 + 32 + 8 + 32 + 8;
      if ((index + 1) % 256 === 0) {
        // A level-0 stratum completes every 256 entries.
        batch.put(keys.tile.withTile(0, Math.floor(index / 256)), stratum);
        puts++;
        bytes += PREFIX.length + 10 + STRATUM_BYTES;
      }
    }
    // Once per batch: the level-1 edge stratum and the tree state.
    batch.put(keys.tile.withTile(1, Math.floor(first / 65536)), stratum);
    batch.put(state, stateValue);
    puts += 2;
    bytes += PREFIX.length + 10 + STRATUM_BYTES + PREFIX.length + 1 + stateValue.length;
    return batch;
  };

  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuMs() ?? Number.NaN;
  let writing: Promise<void> | undefined;
  for (let first = 0; first < total; first += BATCH) {
    const batch = build(first, Math.min(BATCH, total - first));
    if (mode === "pipelined") {
      await writing;
      writing = batch.write({ sync: true });
    } else {
      await batch.write({ sync: true });
    }
  }
  await writing;
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result: CeilingResult = {
    rate: total / seconds,
    cpuMicros: (cpu.user + cpu.system) / total,
    mainMicros: (((mainThreadCpuMs() ?? Number.NaN) - main0) * 1000) / total,
    putsPerEntry: puts / total,
    bytesPerEntry: bytes / total,
  };
  return { result, db, dir };
}

/** Latency of one tiny synced write (an fdatasync of the WAL): the floor under every batch. */
async function syncFloor(db: Db, n: number): Promise<number[]> {
  const times: number[] = [];
  const key = new KeyScratch(0x63, 8);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await db.batch().put(key.withIndex(i), crypto.randomBytes(400)).write({ sync: true });
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b);
}

const QUICK = { rounds: 3, ms: 200 };

interface Ceiling {
  readonly hashRate: number;
  readonly writes: CeilingResult;
  readonly serial: CeilingResult;
  readonly pipelined: CeilingResult;
  readonly formula: number;
  readonly fsyncP50: number;
  readonly fsyncP99: number;
}

async function measureCeiling(): Promise<Ceiling> {
  console.log(`\n## 1a. Ceiling (raw node:crypto + raw level ${BATCH}-entry synced batches)`);
  const slots = makeLeafSlots(BATCH);
  const avgLeaf = slots.reduce((a, s) => a + s.buf.length, 0) / slots.length;
  let k = 0;
  const hashRate = bench(
    `SHA-256 leaf hash (node:crypto one-shot, avg ${avgLeaf.toFixed(0)} B)`,
    () => crypto.hash("sha256", slots[k++ % BATCH]!.buf, "buffer"),
  ).opsPerSec;

  // Work the engine does that the ceiling leaves out, for the analysis (not added to it).
  let m = 0;
  bench(
    `  not in ceiling: SHA-256 of the payload (dedup key, avg ${AVG_PAYLOAD.toFixed(0)} B)`,
    () => crypto.hash("sha256", TEMPLATES[m++ % TEMPLATES.length]!.bytes, "buffer"),
    QUICK,
  );
  const node = crypto.randomBytes(65);
  bench(
    "  not in ceiling: SHA-256 interior node (65 B, ~1 per leaf)",
    () => crypto.hash("sha256", node, "buffer"),
    QUICK,
  );
  const signer = new CheckpointSigner(ORIGIN, SEED);
  const root = crypto.randomBytes(32);
  bench(
    "  not in ceiling: sign a checkpoint (2 Ed25519 sigs, per batch)",
    () => signer.sign(1_000_000, root, 1_700_000_000),
    QUICK,
  );
  let g = 0;
  bench(
    "  not in ceiling: payload generation, one by one (client side)",
    () => payload(g++),
    QUICK,
  );
  bench(
    "  not in ceiling: payload generation, chunks of 256 as 1b makes them",
    () => {
      payloads(g, 256);
      g += 256;
    },
    QUICK,
  );

  const writes = await ceilingRun("writes", CEILING_ENTRIES);
  await writes.db.close();
  removeTempDir(writes.dir);
  const serial = await ceilingRun("serial", CEILING_ENTRIES);
  // Dedup lookups the engine does per batch (all misses, answered by bloom filters).
  const lookupKeys = Array.from({ length: BATCH }, () =>
    new KeyScratch(0x70, 32).with(crypto.randomBytes(32)).slice(),
  );
  const lookupStart = performance.now();
  let lookups = 0;
  while (performance.now() - lookupStart < 1000) {
    await serial.db.getMany(lookupKeys);
    lookups += BATCH;
  }
  const lookupRate = lookups / ((performance.now() - lookupStart) / 1000);
  const floor = await syncFloor(serial.db, 200);
  await serial.db.close();
  removeTempDir(serial.dir);
  const pipelined = await ceilingRun("pipelined", CEILING_ENTRIES);
  await pipelined.db.close();
  removeTempDir(pipelined.dir);

  const formula = 1 / (1 / hashRate + 1 / writes.result.rate);
  const w = writes.result;
  line(
    `  not in ceiling: getMany(${BATCH}) dedup misses`,
    `${formatRate(lookupRate).padStart(12)} keys/s`,
  );
  line(
    "  fsync floor: one tiny synced write, p50 / p99",
    `${fmtMs(percentile(floor, 0.5))} / ${fmtMs(percentile(floor, 0.99))} ms`,
  );
  const cpuOf = (r: CeilingResult) =>
    `  [CPU/entry ${r.cpuMicros.toFixed(1)} µs, main thread ${r.mainMicros.toFixed(1)} µs]`;
  line(
    `LevelDB synced batches, ${w.putsPerEntry.toFixed(3)} puts/entry, ${w.bytesPerEntry.toFixed(0)} B/entry`,
    `${formatRate(w.rate).padStart(12)} entries/s (${formatRate(w.rate * w.putsPerEntry)} records/s), ${fmtInt(CEILING_ENTRIES)} entries${cpuOf(w)}`,
  );
  line(
    "CEILING per core: hash + write, serial (measured)",
    `${formatRate(serial.result.rate).padStart(12)} entries/s${cpuOf(serial.result)}`,
  );
  line(
    "  check: 1/(1/hash + 1/write) from the parts",
    `${formatRate(formula).padStart(12)} entries/s`,
  );
  line(
    "  pipelined: hash batch n+1 during write n (2 threads)",
    `${formatRate(pipelined.result.rate).padStart(12)} entries/s${cpuOf(pipelined.result)}`,
  );
  return {
    hashRate,
    writes: w,
    serial: serial.result,
    pipelined: pipelined.result,
    formula,
    fsyncP50: percentile(floor, 0.5),
    fsyncP99: percentile(floor, 0.99),
  };
}

// ---------------------------------------------------------------------------------------------
// 1b / 3. The engine's sustained rate

interface ThroughputResult {
  readonly entries: number;
  readonly seconds: number;
  readonly rate: number;
  readonly partial: boolean;
  readonly cores: number;
  readonly elu: number;
  readonly cpuMicrosPerEntry: number;
  readonly mainMicrosPerEntry: number;
  readonly gcShare: number;
  readonly batches: number;
  readonly rssStart: number;
  readonly rssEnd: number;
  readonly rssPeak: number;
  readonly heapEnd: number;
  readonly firstRate: number;
  readonly lastRate: number;
  readonly minRate: number;
  readonly rssAt: [number, number][];
  readonly anonAt: [number, number][];
  readonly disk: { apparent: number; allocated: number };
}

const LOOKUPS = 2000;

interface LookupTimes {
  readonly p50: number;
  readonly p99: number;
}

/**
 * Lookups by leaf hash, one at a time, in µs: of random entries of a log of `size`
 * (Log.indexOfLeafHash: the index, then the leaf hash checked against the tree), and of hashes
 * the log does not hold (a NOT_FOUND). What finding a leaf hash's era (src/storage/era-filter.ts)
 * costs a reader.
 */
async function leafHashLookups(
  log: Log,
  size: number,
): Promise<{ found: LookupTimes; absent: LookupTimes }> {
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < LOOKUPS; i++) {
    hashes.push((await log.entry(Math.floor(Math.random() * size))).leafHash);
  }
  const timed = async (list: Uint8Array[]): Promise<LookupTimes> => {
    const times: number[] = [];
    for (const h of list) {
      const t = performance.now();
      await log.indexOfLeafHash(h).catch((e: unknown) => {
        if ((e as { code?: string }).code !== "NOT_FOUND") throw e;
      });
      times.push((performance.now() - t) * 1000);
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
  };
  const found = await timed(hashes);
  const absent = await timed(
    Array.from({ length: LOOKUPS / 4 }, () => new Uint8Array(crypto.randomBytes(32))),
  );
  return { found, absent };
}

/** Log.submitMany is newer than submit(): used where the engine measured has it. */
const SUBMIT_MANY = (
  Log.prototype as { submitMany?: (payloads: readonly Uint8Array[]) => Promise<unknown[]> }
).submitMany;

/** A log for a throughput run in `db` (the engine's defaults but the batch size and dedup rule). */
function openRunLog(
  db: Awaited<ReturnType<typeof openDataDirDatabases>>,
  onCheckpoint?: () => void,
) {
  return Log.open({
    origin: ORIGIN,
    seed: SEED,
    ...db.place("log"),
    batchMaxEntries: BATCH,
    ...(onCheckpoint === undefined ? {} : { onCheckpoint }),
    ...(DEDUP === undefined ? {} : { dedup: DEDUP }),
  });
}

/**
 * In-process appends: `total` entries into `log`, from CONCURRENCY / chunkSize callers each
 * handing it `chunkSize` at a time (submitMany, or submit() when 1 or on an engine without
 * submitMany) and waiting for the receipts. A chunk refused as OVERLOADED is offered again.
 * `acknowledged(n)` hears of each chunk done; `stopped()` ends the run early.
 */
async function appendConcurrently(
  log: Log,
  total: number,
  chunkSize: number,
  o: { stopped?: () => boolean; acknowledged?: (n: number) => void; overloaded?: () => void } = {},
): Promise<void> {
  const submitOne = (chunk: Uint8Array[]) =>
    chunk.length === 1 || SUBMIT_MANY === undefined
      ? log.submit(chunk[0]!)
      : SUBMIT_MANY.call(log, chunk);
  let issued = 0;
  const submitter = async () => {
    while (!(o.stopped?.() ?? false) && issued < total) {
      const first = issued;
      const n = Math.min(chunkSize, total - first);
      issued += n;
      const chunk = payloads(first, n);
      for (;;) {
        try {
          await submitOne(chunk);
          break;
        } catch (e) {
          if (!(e instanceof VellumError) || e.code !== "OVERLOADED") throw e;
          o.overloaded?.();
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      o.acknowledged?.(n);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.floor(CONCURRENCY / chunkSize)) }, submitter),
  );
}

/**
 * The engine's code compiled before the clock starts: `entries` appended the same way into a
 * throwaway log, which is then deleted. Measured from a cold start, the first 100,000 entries
 * of a run went at two thirds of the rate of the rest, with twice the main thread's CPU per
 * entry (V8 still interpreting and compiling); the ceiling's loops are tiny and compiled at
 * once, and its second and third runs start warm. The measured run then starts on a new log.
 */
async function warmUp(entries: number, chunkSize: number): Promise<void> {
  if (entries === 0) return;
  const dir = makeTempDir("warmup");
  const db = await openDataDirDatabases(dir);
  const log = await openRunLog(db);
  const t0 = performance.now();
  await appendConcurrently(log, entries, chunkSize);
  const seconds = (performance.now() - t0) / 1000;
  await log.close();
  await db.close();
  removeTempDir(dir);
  console.log(
    `  warm-up: ${fmtInt(entries)} entries into a throwaway log first (${formatRate(entries / seconds)}/s), then a new log for the run (--warmup-entries 0: none)`,
  );
}

async function throughputRun(total: number, label: string): Promise<ThroughputResult> {
  const step = total >= 5_000_000 ? 1_000_000 : 100_000;
  const chunkSize = SUBMIT_MANY === undefined ? 1 : (CHUNK_OPTION ?? 256);
  const deadlineMs = (60 + total / 5_000) * 1000;
  console.log(
    `\n## ${label}: ${fmtInt(total)} entries, ${fmtInt(CONCURRENCY)} entries in flight from ` +
      (chunkSize === 1
        ? `${fmtInt(CONCURRENCY)} concurrent in-process submit() callers, `
        : `${fmtInt(Math.floor(CONCURRENCY / chunkSize))} concurrent submitMany() callers of ${chunkSize} entries, `) +
      `${BATCH === DEFAULTS.batchMaxEntries ? "default settings" : "NON-DEFAULT batch size"} (batchMaxEntries ${BATCH}, batchMaxAgeMs ${DEFAULTS.batchMaxAgeMs}, every batch synced + signed), ` +
      `time limit ${fmtInt(deadlineMs / 1000)} s`,
  );
  await warmUp(WARMUP_ENTRIES, chunkSize);
  const dir = makeTempDir("log");
  const db = await openDataDirDatabases(dir);
  let batches = 0;
  const log = await openRunLog(db, () => batches++);
  console.log(`  dedup rule: ${log.dedup}`);
  batches = 0;

  gc?.();
  const rssStart = process.memoryUsage.rss();
  let done = 0;
  let stopped = false;
  let overloaded = 0;
  let rssPeak = 0;
  const rssAt: [number, number][] = [];
  const anonAt: [number, number][] = [];
  const intervalRates: number[] = [];
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 1000);
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuMs();
  const elu0 = performance.eventLoopUtilization();
  const gcPauses = trackGc();
  let lastMark = start;
  let lastDone = 0;
  let lastCpu = process.cpuUsage();
  let lastMain = mainThreadCpuMs() ?? Number.NaN;
  const deadline = setTimeout(() => {
    stopped = true;
  }, deadlineMs);

  const progress = () => {
    const now = performance.now();
    const count = done - lastDone;
    lastDone = done;
    const rate = (count * 1000) / (now - lastMark);
    intervalRates.push(rate);
    lastMark = now;
    const rss = process.memoryUsage.rss();
    rssPeak = Math.max(rssPeak, rss);
    rssAt.push([done, rss]);
    const split = rssSplit();
    if (split !== undefined) anonAt.push([done, split.anon]);
    // CPU per entry in this interval tells a slower log (more work per entry) from a busier
    // machine (same work, less CPU given to us).
    const cpu = process.cpuUsage(lastCpu);
    const mainMs = mainThreadCpuMs() ?? Number.NaN;
    const cpuPer = (cpu.user + cpu.system) / count;
    const mainPer = ((mainMs - lastMain) * 1000) / count;
    lastCpu = process.cpuUsage();
    lastMain = mainMs;
    console.log(
      `  ${fmtInt(done).padStart(12)} entries  last ${fmtInt(count)}: ${formatRate(rate).padStart(8)}/s` +
        `  overall ${formatRate((done * 1000) / (now - start)).padStart(8)}/s` +
        `  CPU ${cpuPer.toFixed(1)} µs/entry (main ${mainPer.toFixed(1)})` +
        `  ${memoryText(process.memoryUsage())}`,
    );
  };

  await appendConcurrently(log, total, chunkSize, {
    stopped: () => stopped,
    overloaded: () => overloaded++,
    acknowledged: (n) => {
      const before = done;
      done += n;
      if (Math.floor(done / step) > Math.floor(before / step)) progress();
    },
  });
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const main1 = mainThreadCpuMs();
  const mainCpuMs = main0 === undefined || main1 === undefined ? undefined : main1 - main0;
  const gcTime = gcPauses.stop();
  clearTimeout(deadline);
  clearInterval(sampler);
  gc?.();
  const mem = process.memoryUsage();
  rssPeak = Math.max(rssPeak, mem.rss);
  const lookups = await leafHashLookups(log, done);

  const closeStart = performance.now();
  await log.close();
  await db.close();
  const closeMs = performance.now() - closeStart;
  const disk = diskUsage(dir);
  const work = levelDbWork(path.join(dir, "db"));
  const entriesWork = levelDbWork(path.join(dir, "entries"));
  removeTempDir(dir);

  const rate = done / seconds;
  const cores = (cpu.user + cpu.system) / 1e6 / seconds;
  const sortedRates = [...intervalRates].sort((a, b) => a - b);
  const result: ThroughputResult = {
    entries: done,
    seconds,
    rate,
    partial: stopped,
    cores,
    elu: elu.utilization,
    cpuMicrosPerEntry: (cpu.user + cpu.system) / done,
    mainMicrosPerEntry:
      mainCpuMs === undefined ? Number.NaN : (mainCpuMs * 1000) / Math.max(1, done),
    gcShare: gcTime.total / (seconds * 1000),
    batches,
    rssStart,
    rssEnd: mem.rss,
    rssPeak,
    heapEnd: mem.heapUsed,
    firstRate: intervalRates[0] ?? rate,
    lastRate: intervalRates.at(-1) ?? rate,
    minRate: sortedRates[0] ?? rate,
    rssAt,
    anonAt,
    disk,
  };
  line(
    `SUSTAINED ${fmtInt(done)} entries${stopped ? " (PARTIAL: time limit)" : ""}`,
    `${formatRate(rate)} entries/s over ${seconds.toFixed(1)} s`,
  );
  line(
    "  per-interval rate: first / last / slowest",
    `${formatRate(result.firstRate)} / ${formatRate(result.lastRate)} / ${formatRate(result.minRate)} entries/s`,
  );
  line(
    "  CPU: process cores busy (all threads) / main-thread ELU",
    `${cores.toFixed(2)} cores / ${(elu.utilization * 100).toFixed(0)} %  (${formatRate(done / ((cpu.user + cpu.system) / 1e6))} entries per CPU-second)`,
  );
  line(
    "  CPU per entry: all threads / main thread / other threads",
    `${result.cpuMicrosPerEntry.toFixed(1)} / ${result.mainMicrosPerEntry.toFixed(1)} / ${(result.cpuMicrosPerEntry - result.mainMicrosPerEntry).toFixed(1)} µs` +
      "  (main thread: its own CPU, not GC helpers nor time descheduled)",
  );
  line(
    "  GC pauses (wall): share of the run / count / longest",
    `${(result.gcShare * 100).toFixed(0)} % / ${fmtInt(gcTime.count)} / ${fmtMs(gcTime.max)} ms`,
  );
  line(
    "  batches (signed checkpoints) / mean entries per batch",
    `${fmtInt(batches)} / ${(done / Math.max(1, batches)).toFixed(0)}${overloaded > 0 ? ` (${overloaded} OVERLOADED retries)` : ""}`,
  );
  line(
    `  memory${gc ? " (after gc)" : ""}: RSS at start / at end / peak`,
    `${fmtMB(rssStart)} / ${fmtMB(mem.rss)} / ${fmtMB(rssPeak)}  (${memoryText(mem)})`,
  );
  line(
    "  disk after close: bytes per entry (du / apparent)",
    `${(disk.allocated / done).toFixed(0)} / ${(disk.apparent / done).toFixed(0)} B  (${fmtMB(disk.allocated)} total; close took ${closeMs.toFixed(0)} ms)`,
  );
  for (const [name, w] of [
    ["DATA/db", work],
    ["DATA/entries", entriesWork],
  ] as const) {
    const compactedTotal = [...w.compacted.values()].reduce((a, b) => a + b, 0);
    line(
      `  LevelDB ${name}: flushed / compactions wrote (by input level) / tables moved`,
      `${fmtMB(w.flushed)} / ${fmtMB(compactedTotal)} (${[...w.compacted]
        .sort((a, b) => a[0] - b[0])
        .map(([level, bytes]) => `L${level} ${fmtMB(bytes)}`)
        .join(
          ", ",
        )}) / ${fmtInt(w.moved)}; ${(compactedTotal / done).toFixed(0)} B compacted per entry`,
    );
  }
  line(
    `  lookup by leaf hash (${fmtInt(LOOKUPS)} random entries / ${fmtInt(LOOKUPS / 4)} absent hashes, one at a time)`,
    `p50 ${lookups.found.p50.toFixed(0)} / ${lookups.absent.p50.toFixed(0)} µs, p99 ${lookups.found.p99.toFixed(0)} / ${lookups.absent.p99.toFixed(0)} µs (eras of 2^18 entries: ${fmtInt(Math.ceil(done / 2 ** 18))} here)`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// 2. Latency, open-loop

interface LatencyResult {
  readonly ageMs: number;
  readonly offered: number;
  readonly achieved: number;
  readonly samples: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly submitP50: number;
  readonly submitP99: number;
  readonly meanBatch: number;
  /** Sorted latencies from the scheduled send time, ms. */
  readonly sorted: readonly number[];
}

async function latencyRun(ageMs: number): Promise<LatencyResult> {
  const dir = makeTempDir("latency");
  const db = await openDataDirDatabases(dir);
  let batches = 0;
  const log = await Log.open({
    origin: ORIGIN,
    seed: SEED,
    ...db.place("log"),
    batchMaxAgeMs: ageMs,
    onCheckpoint: () => batches++,
  });
  const warm = LATENCY_RATE; // the first second warms the JIT and LevelDB up; not recorded
  const total = warm + LATENCY_RATE * LATENCY_SECONDS;
  const fromSchedule: number[] = [];
  const fromSubmit: number[] = [];
  const pending = new Set<Promise<void>>();
  let warmBatches = 0;
  let errors = 0;
  const periodMs = 1000 / LATENCY_RATE;
  let gcPauses: ReturnType<typeof trackGc> | undefined;
  let cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let measureStart = 0;

  const fire = (i: number, scheduled: number) => {
    if (i === warm) {
      warmBatches = batches;
      measureStart = performance.now();
      gcPauses = trackGc();
      cpu0 = process.cpuUsage();
    }
    const sent = performance.now();
    const p = log
      .submit(payload(i))
      .then((r) => r.proof())
      .then(
        () => {
          if (i < warm) return;
          const end = performance.now();
          fromSchedule.push(end - scheduled);
          fromSubmit.push(end - sent);
        },
        () => {
          errors++;
        },
      );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && t0 + next * periodMs <= now) {
        fire(next, t0 + next * periodMs);
        next++;
      }
      if (next >= total) resolve();
      else setTimeout(tick, Math.max(0, t0 + next * periodMs - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  const elapsed = (performance.now() - measureStart) / 1000;
  const measuredBatches = batches - warmBatches;
  const gcTime = gcPauses?.stop() ?? { total: 0, max: 0, count: 0 };
  const cpu = process.cpuUsage(cpu0);
  const cpuShare = (cpu.user + cpu.system) / 1e6 / elapsed;
  await log.close();
  await db.close();
  removeTempDir(dir);
  if (errors > 0) console.log(`  (${errors} submissions failed)`);

  fromSchedule.sort((a, b) => a - b);
  fromSubmit.sort((a, b) => a - b);
  const result: LatencyResult = {
    ageMs,
    offered: LATENCY_RATE,
    achieved: fromSchedule.length / elapsed,
    samples: fromSchedule.length,
    p50: percentile(fromSchedule, 0.5),
    p99: percentile(fromSchedule, 0.99),
    max: fromSchedule.at(-1) ?? Number.NaN,
    submitP50: percentile(fromSubmit, 0.5),
    submitP99: percentile(fromSubmit, 0.99),
    meanBatch: fromSchedule.length / Math.max(1, measuredBatches),
    sorted: fromSchedule,
  };
  line(
    `batchMaxAgeMs ${String(ageMs).padStart(2)}: submit → receipt + proof, p50 / p99 / max`,
    `${fmtMs(result.p50)} / ${fmtMs(result.p99)} / ${fmtMs(result.max)} ms` +
      `  (from submit() call: p50 ${fmtMs(result.submitP50)}, p99 ${fmtMs(result.submitP99)}; ` +
      `${fmtInt(result.samples)} samples, ${formatRate(result.achieved)}/s, ${result.meanBatch.toFixed(1)} entries/batch, ` +
      `longest GC pause ${fmtMs(gcTime.max)} ms, CPU ${(cpuShare * 100).toFixed(0)} % of a core)`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// Main

const startedAt = performance.now();
console.log(`# Vellum log engine benchmark — ${machine()}`);
/** Other processes on a small shared machine skew every figure: print the load around the run. */
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
console.log(`load average before: ${load()}`);
// The young generation's size moves the GC share a lot (15-16 % of the sustained run at node's
// default of 16 MiB a half, 8-9 % at 64): say what this run had, and whether it is the server's.
const serverFlags = SERVER_NODE_FLAGS.every((f) => process.execArgv.includes(f));
console.log(
  `node flags: ${process.execArgv.filter((a) => a.startsWith("--") && !a.startsWith("--import")).join(" ") || "(none)"}${serverFlags ? " (the server's, as bin/vellum.js runs it)" : `; not the server's ${SERVER_NODE_FLAGS.join(" ")}: run it as npm run bench:log does`}`,
);
console.log(
  `temp dir ${os.tmpdir()}; payloads: JSON audit events, ${Math.min(...payloadSizes)}–${Math.max(...payloadSizes)} B (avg ${AVG_PAYLOAD.toFixed(0)} B)`,
);

let ceiling: Ceiling | undefined;
if (runs("ceiling")) ceiling = await measureCeiling();

let main: ThroughputResult | undefined;
if (runs("throughput")) {
  main = await throughputRun(ENTRIES, "1b. Engine throughput");
  if (ceiling !== undefined) {
    line(
      "RATIO engine / ceiling: wall rate (serial | pipelined)",
      `${((main.rate / ceiling.serial.rate) * 100).toFixed(0)} % | ${((main.rate / ceiling.pipelined.rate) * 100).toFixed(0)} %`,
    );
    line(
      "RATIO engine / ceiling: CPU per entry (load-independent)",
      `${((ceiling.serial.cpuMicros / main.cpuMicrosPerEntry) * 100).toFixed(0)} %  (${ceiling.serial.cpuMicros.toFixed(1)} vs ${main.cpuMicrosPerEntry.toFixed(1)} µs)`,
    );
  }
  line("TARGET ≥ 50,000 entries/s sustained", main.rate >= 50_000 ? "met" : "MISSED");
}

const latency: LatencyResult[] = [];
if (runs("latency")) {
  console.log(
    `\n## 2. Latency: open-loop at ${fmtInt(LATENCY_RATE)} entries/s for ${LATENCY_SECONDS} s (+1 s warm-up), ` +
      "await submit() then receipt.proof(); latency from the scheduled send time",
  );
  const all: LatencyResult[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    if (ROUNDS > 1) console.log(`round ${r} of ${ROUNDS}`);
    for (const age of AGES) all.push(await latencyRun(age));
  }
  for (const age of AGES) {
    const runsOfAge = all.filter((l) => l.ageMs === age);
    if (runsOfAge.length === 1) {
      latency.push(runsOfAge[0]!);
      continue;
    }
    // Pooled over the rounds: percentiles of all samples together.
    const sorted = runsOfAge.flatMap((l) => l.sorted).sort((a, b) => a - b);
    const n = runsOfAge.length;
    const pooled: LatencyResult = {
      ...runsOfAge[0]!,
      samples: sorted.length,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted.at(-1) ?? Number.NaN,
      achieved: runsOfAge.reduce((a, l) => a + l.achieved, 0) / n,
      meanBatch: runsOfAge.reduce((a, l) => a + l.meanBatch, 0) / n,
      sorted,
    };
    latency.push(pooled);
    line(
      `POOLED batchMaxAgeMs ${String(age).padStart(2)} (${n} rounds): p50 / p99 / max`,
      `${fmtMs(pooled.p50)} / ${fmtMs(pooled.p99)} / ${fmtMs(pooled.max)} ms  (${fmtInt(sorted.length)} samples; ` +
        `per-round p99 ${runsOfAge.map((l) => fmtMs(l.p99)).join(", ")} ms)`,
    );
  }
  const chosen = latency.find((l) => l.ageMs === DEFAULTS.batchMaxAgeMs) ?? latency[0];
  if (chosen !== undefined) {
    line(
      `TARGET p50 ≤ 20 ms, p99 ≤ 100 ms (default batchMaxAgeMs ${chosen.ageMs})`,
      chosen.p50 <= 20 && chosen.p99 <= 100 ? "met" : "MISSED",
    );
  }
}

let scale: ThroughputResult | undefined;
if (runs("scale")) {
  scale = await throughputRun(SCALE_ENTRIES, "3. Scale");
  if (main !== undefined) {
    const change = (scale.rate / main.rate - 1) * 100;
    const cpuChange = (scale.cpuMicrosPerEntry / main.cpuMicrosPerEntry - 1) * 100;
    const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(0)} %`;
    line(
      `Scale: ${fmtInt(scale.entries)} vs ${fmtInt(main.entries)} entries`,
      `${formatRate(scale.rate)} vs ${formatRate(main.rate)} entries/s (${signed(change)}) — ` +
        (change >= -20 ? "no more than 20 % slower: met" : "MISSED"),
    );
    line(
      "  CPU per entry at 10M vs 1M (load-independent)",
      `${scale.cpuMicrosPerEntry.toFixed(1)} vs ${main.cpuMicrosPerEntry.toFixed(1)} µs (${signed(cpuChange)})`,
    );
  }
  const first = scale.rssAt[0];
  const last = scale.rssAt.at(-1);
  if (first !== undefined && last !== undefined) {
    line(
      `  RSS at ${fmtInt(first[0])} vs ${fmtInt(last[0])} entries (same run)`,
      `${fmtMB(first[1])} vs ${fmtMB(last[1])}`,
    );
    const [a, b] = [scale.anonAt[0], scale.anonAt.at(-1)];
    if (a !== undefined && b !== undefined) {
      line(
        `  anonymous RSS at ${fmtInt(a[0])} vs ${fmtInt(b[0])} entries`,
        `${fmtMB(a[1])} vs ${fmtMB(b[1])} (the rest is LevelDB's mmap'd table files)`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Summary, for the README

const rows: string[] = [];
const row = (what: string, result: string, target = "") =>
  rows.push(`| ${what} | ${result} | ${target} |`);
if (ceiling !== undefined) {
  row(
    "ceiling per core: SHA-256 leaf + synced LevelDB batch (serial; pipelined)",
    `${formatRate(ceiling.serial.rate)}/s; ${formatRate(ceiling.pipelined.rate)}/s`,
  );
  row(
    "fsync floor (one tiny synced write) p50 / p99",
    `${fmtMs(ceiling.fsyncP50)} / ${fmtMs(ceiling.fsyncP99)} ms`,
  );
}
for (const r of [main, scale]) {
  if (r === undefined) continue;
  const vs =
    ceiling === undefined
      ? ""
      : ` (${((r.rate / ceiling.serial.rate) * 100).toFixed(0)} % of ceiling; CPU ${r.cpuMicrosPerEntry.toFixed(0)} vs ${ceiling.serial.cpuMicros.toFixed(0)} µs/entry)`;
  row(
    `sustained appends, ${fmtInt(r.entries)} entries${r.partial ? " (partial)" : ""}`,
    `${formatRate(r.rate)} entries/s${vs}`,
    r === main ? "≥ 50 k/s" : "within 20 % of 1M",
  );
  row(
    `RSS at ${fmtInt(r.entries)} entries (peak)`,
    `${fmtMB(r.rssEnd)} (${fmtMB(r.rssPeak)})`,
    "flat in log size",
  );
  row(
    `disk per entry at ${fmtInt(r.entries)} (du)`,
    `${(r.disk.allocated / r.entries).toFixed(0)} B`,
  );
}
for (const l of latency) {
  row(
    `submit → receipt + proof at ${fmtInt(l.offered)}/s, batchMaxAgeMs ${l.ageMs}: p50 / p99 / max`,
    `${fmtMs(l.p50)} / ${fmtMs(l.p99)} / ${fmtMs(l.max)} ms`,
    "p50 ≤ 20 ms, p99 ≤ 100 ms",
  );
}
console.log(`\nload average after: ${load()}`);
console.log(
  `\n## Summary (paste into README) — took ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
);
console.log(
  `\nMeasured with \`npm run bench:log\` on ${machine()}; payloads ${fmtInt(AVG_PAYLOAD)} B on average.\n`,
);
console.log("| measure | result | target |");
console.log("| --- | ---: | --- |");
for (const r of rows) console.log(r);
