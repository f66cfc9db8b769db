/**
 * Benchmark of the verifiable index (spec/audit.md, "The index"), two parts, on 127.0.0.1:
 *
 *  lag      `vellum serve` (the built dist/) under sustained single-event POST /v1/events at the
 *           server's full rate (autocannon, --connections keep-alive connections, one request in
 *           flight each, a unique OCSF event per request), run twice on fresh data directories
 *           in the same run: with `--no-index` (the baseline) and with the index. Reports both
 *           rates and their ratio, the server's CPU per event, and the index's lag: /metrics
 *           is sampled every 100 ms (tree size, index lag); an entry's lag is the time from the
 *           first sample where the log holds it to the first where the index covers it.
 *  queries  in process, over a log of --events events (LevelDB in a temporary directory) built
 *           and indexed first: for actors with 10, 1,000 and 100,000 events, a whole query
 *           answered page by page (indexPage, 1,000 results a page) and verified
 *           (verifyIndexPage), with its time and proof size (JSON bytes, hashes).
 *  revisions  (only when named in --only) in process, what a revision's size costs per event:
 *           CPU and bytes written, revisions of each of --revision-sizes in turns.
 *
 *   npm run bench:index
 *   npm run bench:index -- --seconds 20 --connections 64 --events 10000000
 *   npm run bench:index -- --only queries
 *   npm run bench:index -- --only lag --rounds 4     # the lag part four times, in turns (ABBA)
 *   npm run bench:index -- --only revisions          # CPU and writes per event by revision size
 *
 * Absolute rates on a shared machine move between days: compare the ratio measured in one run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { canonicalBytes } from "../src/audit/canonical.js";
import { decodeIndexAnswer } from "../src/client/index-query.js";
import { openCheckpoint } from "../src/core/checkpoint.js";
import { indexKeysOfPayload } from "../src/core/event-keys.js";
import { type IndexPin, indexLogVerifierKey, verifyIndexPage } from "../src/core/index-answer.js";
import { verifierFromKey } from "../src/core/keys.js";
import { indexPage } from "../src/indexing/answers.js";
import { ChildIndexStore } from "../src/indexing/child-store.js";
import { Indexer } from "../src/indexing/engine.js";
import { INDEX_DATABASE_OPTIONS } from "../src/indexing/local-store.js";
import { Log } from "../src/log/log.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { openLevelDatabase } from "../src/storage/level.js";
import {
  childProcesses,
  cpuSeconds,
  formatRate,
  machine,
  perThread,
  threadCpu,
} from "./lib/bench.js";
import { startVellum } from "./lib/vellum-process.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "15" },
    connections: { type: "string", default: "64" },
    events: { type: "string", default: "1000000" },
    only: { type: "string" },
    rounds: { type: "string", default: "1" },
    "revision-events": { type: "string", default: "200000" },
    "revision-sizes": { type: "string", default: "4000,10000" },
    /** local: the store in this process (bytes written counted); child: as the server runs it. */
    "revision-store": { type: "string", default: "local" },
  },
});
const seconds = Number(args.seconds);
const connections = Number(args.connections);
const totalEvents = Number(args.events.replaceAll("_", ""));
const only = new Set((args.only ?? "lag,queries").split(","));
const rounds = Number(args.rounds);

function event(n: number, actor: string): Record<string, unknown> {
  return {
    class_uid: 6003,
    category_uid: 6,
    activity_id: 3,
    type_uid: 600303,
    time: 1_764_748_800_000 + n,
    severity_id: 1,
    status_id: 1,
    actor: { user: { uid: actor } },
    api: { operation: ["ReadInvoice", "UpdateInvoice", "DeleteInvoice"][n % 3] },
    resources: [{ uid: `invoice-${n}`, type: "invoice" }],
    src_endpoint: { ip: "192.0.2.7" },
    metadata: {
      product: { name: "bench" },
      version: "1.8.0",
      uid: `bench-${n}`,
      tenant_uid: `tenant-${n % 10}`,
    },
  };
}

/** The median of sorted values: the mean of the middle two for an even count. */
const median = (sorted: number[]) => {
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
};
const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

// ---------------------------------------------------------------------------------------------
// lag

type Autocannon = (opts: Record<string, unknown>) => Promise<{
  duration: number;
  "2xx": number;
  non2xx: number;
  errors: number;
  latency: { p50: number; p99: number };
}>;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

/** Bytes the process has caused to be written to storage (/proc/PID/io write_bytes). */
function bytesWritten(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  let total = 0;
  for (const p of [pid, ...childProcesses(pid)]) {
    try {
      const m = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${p}/io`, "utf8"));
      if (m === null) return undefined;
      total += Number(m[1]);
    } catch {
      return undefined; // not Linux, or the process is gone
    }
  }
  return total;
}

/** Resident memory (MiB) of `pid` and of each child process, by name: "main 410, vellum-index 95". */
function residentMiB(pid: number | undefined): string {
  if (pid === undefined) return "";
  const rss = (p: number) => {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      return m === null ? undefined : Number(m[1]) / 1024;
    } catch {
      return undefined;
    }
  };
  const parts: string[] = [];
  const own = rss(pid);
  if (own !== undefined) parts.push(`server ${own.toFixed(0)}`);
  for (const child of childProcesses(pid)) {
    const r = rss(child);
    const name = readFileSync(`/proc/${child}/comm`, "utf8").trim();
    if (r !== undefined) parts.push(`${name} ${r.toFixed(0)}`);
  }
  return parts.join(", ");
}

/** Bytes under `dir`, by its top-level entries (each subdirectory summed). */
function sizesUnder(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  const walk = (path: string): number => {
    const st = statSync(path);
    if (!st.isDirectory()) return st.size;
    let n = 0;
    for (const e of readdirSync(path)) n += walk(join(path, e));
    return n;
  };
  for (const e of readdirSync(dir)) sizes.set(e, walk(join(dir, e)));
  return sizes;
}

/** The server's /metrics, once: both sides of a comparison pay the same for being sampled. */
async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, "m").exec(text);
  return m === null ? undefined : Number(m[1]);
}

async function lagRun(withIndex: boolean) {
  const data = mkdtempSync(join(os.tmpdir(), "vellum-bench-index-"));
  const server = await startVellum(
    [
      "serve",
      "--data",
      data,
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      ...(withIndex ? [] : ["--no-index"]),
    ],
    "/readyz",
  );
  try {
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    let n = 0;
    const run = (duration: number) =>
      autocannon({
        url: `${server.url}/v1/events`,
        connections,
        duration,
        pipelining: 1,
        timeout: 30,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        requests: [
          {
            method: "POST",
            setupRequest: (r: Record<string, unknown>) => ({
              ...r,
              body: JSON.stringify(event(n, `user-${n++ % 1000}`)),
            }),
          },
        ],
      });
    await run(2); // warm-up
    const samples: { t: number; size: number; indexed: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const t = performance.now();
        const text = await metrics(server.url);
        const size = metric(text, "vellum_tree_size") ?? 0;
        const lag = withIndex ? (metric(text, "vellum_index_lag_entries") ?? 0) : 0;
        samples.push({ t, size, indexed: size - lag });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const cpu0 = cpuSeconds(server.child.pid);
    const threads0 = threadCpu(server.child.pid);
    const written0 = bytesWritten(server.child.pid);
    const result = await run(seconds);
    const cpu1 = cpuSeconds(server.child.pid);
    const threads1 = threadCpu(server.child.pid);
    const written1 = bytesWritten(server.child.pid);
    const resident = residentMiB(server.child.pid);
    const byThread = perThread(threads0, threads1, result["2xx"]);
    // Let the index catch up (bounded), still sampling.
    const drainStart = performance.now();
    while (withIndex && performance.now() - drainStart < 60_000) {
      const last = samples.at(-1);
      if (last !== undefined && last.indexed >= last.size) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const drainSeconds = (performance.now() - drainStart) / 1000;
    sampling = false;
    await sampler;
    const lags: number[] = [];
    if (withIndex) {
      for (const s of samples) {
        const covered = samples.find((x) => x.t >= s.t && x.indexed >= s.size);
        lags.push(covered === undefined ? Number.POSITIVE_INFINITY : (covered.t - s.t) / 1000);
      }
      lags.sort((a, b) => a - b);
    }
    const rate = result["2xx"] / result.duration;
    const cpu = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0;
    // What the data directory holds by then, per event in the log (written over the run too).
    const events = metric(await metrics(server.url), "vellum_tree_size") ?? 0;
    const disk = [...sizesUnder(data)]
      .filter(([, bytes]) => bytes >= 4096)
      .sort((a, b) => b[1] - a[1])
      .map(([name, bytes]) => `${name} ${(bytes / Math.max(1, events)).toFixed(0)}`)
      .join(", ");
    return {
      writtenPerEvent:
        written0 === undefined || written1 === undefined
          ? undefined
          : (written1 - written0) / result["2xx"],
      disk,
      resident,
      rate,
      result,
      lags,
      drainSeconds,
      perThread: byThread,
      cpuPerEvent: cpu === undefined ? undefined : (1e6 * cpu) / result["2xx"],
    };
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

async function lagBench(): Promise<void> {
  console.log(
    `\n## lag: single-event POST /v1/events, ${connections} connections, ${seconds} s measured after 2 s warm-up`,
  );
  const line = (name: string, r: Awaited<ReturnType<typeof lagRun>>) =>
    console.log(
      `${name.padEnd(22)} ${formatRate(r.rate).padStart(8)} events/s  p50 ${r.result.latency.p50.toFixed(1)} ms  p99 ${r.result.latency.p99.toFixed(1)} ms` +
        `  [non-2xx ${r.result.non2xx}, errors ${r.result.errors}]` +
        (r.cpuPerEvent === undefined ? "" : `  server CPU ${r.cpuPerEvent.toFixed(0)} µs/event`) +
        (r.perThread === "" ? "" : `\n${"".padEnd(22)} by thread, µs/event: ${r.perThread}`) +
        (r.writtenPerEvent === undefined
          ? ""
          : `\n${"".padEnd(22)} written to storage during the run ${r.writtenPerEvent.toFixed(0)} B/event; data directory per event in the log, B: ${r.disk}`) +
        (r.resident === ""
          ? ""
          : `\n${"".padEnd(22)} resident memory at the end of the load, MiB: ${r.resident}`),
    );
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    if (rounds > 1) console.log(`round ${round} of ${rounds}`);
    // Both in each round, in turns (without first in odd rounds, with first in even ones), so
    // that a machine slowing down or speeding up over the run favours neither side.
    const withFirst = round % 2 === 0;
    const first = await lagRun(withFirst);
    const second = await lagRun(!withFirst);
    const [base, indexed] = withFirst ? [second, first] : [first, second];
    line("without the index", base);
    line("with the index", indexed);
    ratios.push(indexed.rate / base.rate);
    console.log(`ratio (with / without): ${(indexed.rate / base.rate).toFixed(3)}`);
    const l = indexed.lags;
    console.log(
      `index lag over ${l.length} samples: p50 ${pct(l, 0.5).toFixed(2)} s, p99 ${pct(l, 0.99).toFixed(2)} s, max ${(l.at(-1) ?? 0).toFixed(2)} s; caught up ${indexed.drainSeconds.toFixed(1)} s after the load stopped`,
    );
  }
  if (rounds > 1) {
    const sorted = [...ratios].sort((a, b) => a - b);
    console.log(
      `ratios over ${rounds} rounds: ${ratios.map((r) => r.toFixed(3)).join(", ")}; median ${median(sorted).toFixed(3)}`,
    );
  }
}

async function queryBench(): Promise<void> {
  installNodeCrypto();
  const dir = mkdtempSync(join(os.tmpdir(), "vellum-bench-index-q-"));
  try {
    const db = await openLevelDatabase(join(dir, "db"));
    const indexDb = await openLevelDatabase(join(dir, "index"), INDEX_DATABASE_OPTIONS);
    const seed = new Uint8Array(32).fill(7);
    const log = await Log.open({
      origin: "bench.example/log",
      seed,
      kv: db.namespace("log"),
      checkpointIntervalMs: 0,
    });
    const indexLog = await Log.open({
      origin: "bench.example/log/index",
      seed,
      kv: db.namespace("index-log"),
      checkpointIntervalMs: 0,
      batchMaxAgeMs: 0,
    });
    const sizes = [10, 1_000, 100_000].filter((k) => k <= totalEvents);
    // Actor "q<k>" has k events spread evenly; every other event has one of 1,000 actors.
    const special = new Map<number, string>();
    for (const k of sizes) {
      const step = Math.floor(totalEvents / k);
      for (let j = 0; j < k; j++) {
        let at = j * step + sizes.indexOf(k);
        while (special.has(at)) at++;
        special.set(at, `q${k}`);
      }
    }
    console.log(`\n## queries: building a log of ${totalEvents} events and its index`);
    let t = performance.now();
    const CHUNK = 10_000;
    for (let i = 0; i < totalEvents; i += CHUNK) {
      const batch: Uint8Array[] = [];
      for (let n = i; n < Math.min(totalEvents, i + CHUNK); n++) {
        batch.push(canonicalBytes(event(n, special.get(n) ?? `user-${n % 1000}`)));
      }
      await log.submitMany(batch);
    }
    const logSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    // What the index writes (keys and values handed to LevelDB), counted on the way in.
    const indexKv = indexDb.namespace("index");
    let written = 0;
    const write = indexKv.write.bind(indexKv);
    indexKv.write = (ops) => {
      for (const op of ops) written += op.key.length + (op.type === "put" ? op.value.length : 0);
      return write(ops);
    };
    const indexer = await Indexer.open({
      source: log,
      indexLog,
      kv: indexKv,
      keysOf: indexKeysOfPayload,
    });
    await indexer.catchUp();
    const indexSeconds = (performance.now() - t) / 1000;
    console.log(
      `log: ${formatRate(totalEvents / logSeconds)} events/s in process (${logSeconds.toFixed(0)} s); index: ${formatRate(totalEvents / indexSeconds)} events/s (${indexSeconds.toFixed(0)} s, ${indexLog.size} revisions, ${(written / totalEvents / 1024).toFixed(2)} KiB written per event)`,
    );
    const logKey = log.signer.verifierKey;
    const logVerifier = verifierFromKey(logKey);
    const indexVerifier = verifierFromKey(indexLogVerifierKey(logKey));
    for (const k of sizes) {
      const started = performance.now();
      let serverMs = 0;
      let verifyMs = 0;
      let bytes = 0;
      let hashes = 0;
      let pages = 0;
      let results = 0;
      let cursor: string | undefined;
      let pin: IndexPin | undefined;
      do {
        const s0 = performance.now();
        const answer = await indexPage(indexer, {
          keys: [{ kind: "actor", value: `q${k}` }],
          limit: 1000,
          order: "asc",
          ...(cursor === undefined ? {} : { cursor }),
        });
        const text = JSON.stringify(answer);
        serverMs += performance.now() - s0;
        bytes += text.length;
        const v0 = performance.now();
        const decoded = decodeIndexAnswer(JSON.parse(text));
        const p = decoded.page;
        hashes +=
          p.multiproof.length +
          p.run.multiproof.length +
          p.window.multiproof.length +
          (p.revision === undefined
            ? 0
            : p.revision.inclusion.length +
              p.revision.map.siblings.length +
              p.revision.consistency.length);
        const main =
          decoded.checkpoint === null
            ? undefined
            : openCheckpoint(decoded.checkpoint, logVerifier).checkpoint;
        const index =
          decoded.indexCheckpoint === null
            ? undefined
            : openCheckpoint(decoded.indexCheckpoint, indexVerifier).checkpoint;
        const verified = verifyIndexPage(
          p,
          main === undefined ? undefined : { size: main.size, root: main.rootHash },
          index === undefined ? undefined : { size: index.size, root: index.rootHash },
          pin,
        );
        verifyMs += performance.now() - v0;
        pin = verified.pin;
        results += verified.events.length;
        pages++;
        cursor = decoded.next ?? undefined;
      } while (cursor !== undefined);
      const total = performance.now() - started;
      console.log(
        `${`${k} results`.padEnd(16)} ${results} verified in ${pages} page(s): ${total.toFixed(0)} ms (server ${serverMs.toFixed(0)} ms, verify ${verifyMs.toFixed(0)} ms); ` +
          `proof ${(bytes / 1024).toFixed(1)} KiB of JSON, ${hashes} hashes (${(hashes / Math.max(1, results)).toFixed(2)} per result)`,
      );
    }
    await indexer.close();
    await indexLog.close();
    await log.close();
    await db.close();
    await indexDb.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// revisions (only when named in --only)

/**
 * What a revision's size costs per event, in process: the same log of --revision-events events
 * indexed from scratch with revisions of each size in --revision-sizes, in turns (twice each,
 * the order reversed the second time), each into a fresh store. Prints the rate, the process's
 * CPU per event (every thread, including 2 s after, while LevelDB compacts what was written)
 * and the bytes handed to the store per event. The server's --index-interval-ms sets how large
 * its revisions get: about the interval times the rate.
 */
async function revisionBench(): Promise<void> {
  const events = Number(args["revision-events"].replaceAll("_", ""));
  const revisionSizes = args["revision-sizes"].split(",").map(Number);
  console.log(
    `\n## revisions: ${events} events indexed in process with revisions of ${revisionSizes.join(" / ")} events, in turns`,
  );
  installNodeCrypto();
  const dir = mkdtempSync(join(os.tmpdir(), "vellum-bench-revisions-"));
  try {
    const db = await openLevelDatabase(join(dir, "db"));
    const seed = new Uint8Array(32).fill(3);
    const log = await Log.open({
      origin: "bench.example/log",
      seed,
      kv: db.namespace("log"),
      checkpointIntervalMs: 0,
    });
    for (let i = 0; i < events; i += 10_000) {
      const batch: Uint8Array[] = [];
      for (let n = i; n < Math.min(events, i + 10_000); n++) {
        batch.push(canonicalBytes(event(n, `user-${n % 1000}`)));
      }
      await log.submitMany(batch);
    }
    await new Promise((r) => setTimeout(r, 3000)); // the log's own compaction settles
    const order = [...revisionSizes, ...[...revisionSizes].reverse()];
    const inChild = args["revision-store"] === "child";
    for (const [i, size] of order.entries()) {
      const indexDb = await openLevelDatabase(join(dir, `index-${i}`), INDEX_DATABASE_OPTIONS);
      // In a child process, the store's database is its own (the index log stays here).
      const child = inChild
        ? await ChildIndexStore.open(join(dir, `index-store-${i}`), "event-keys")
        : undefined;
      const indexLog = await Log.open({
        origin: "bench.example/log/index",
        seed,
        kv: indexDb.namespace("index-log"),
        checkpointIntervalMs: 0,
        batchMaxAgeMs: 0,
      });
      const kv = indexDb.namespace("index");
      let written = 0;
      const write = kv.write.bind(kv);
      kv.write = (ops) => {
        for (const op of ops) written += op.key.length + (op.type === "put" ? op.value.length : 0);
        return write(ops);
      };
      // A revision streams its puts (writePuts); count those too.
      const writePuts = kv.writePuts?.bind(kv);
      if (writePuts !== undefined) {
        kv.writePuts = (fill) =>
          writePuts((put) =>
            fill((key, value) => {
              written += key.length + value.length;
              put(key, value);
            }),
          );
      }
      const cpu0 = process.cpuUsage();
      const threads0 = threadCpu(process.pid);
      const t0 = performance.now();
      const indexer = await Indexer.open({
        source: log,
        indexLog,
        ...(child === undefined ? { kv, keysOf: indexKeysOfPayload } : { store: child }),
        maxRevisionEntries: size,
      });
      await indexer.catchUp();
      const seconds = (performance.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 2000));
      const cpu = process.cpuUsage(cpu0);
      const byThread = perThread(threads0, threadCpu(process.pid), events);
      // The index process's CPU (µs), which process.cpuUsage() does not count.
      let childCpu = 0;
      for (const [name, sec] of threadCpu(process.pid)) {
        if (name.startsWith("vellum-index")) childCpu += 1e6 * (sec - (threads0.get(name) ?? 0));
      }
      const writtenText = inChild
        ? "the store in a child process"
        : `${(written / events / 1024).toFixed(2)} KiB written per event`;
      console.log(
        `revisions of ${String(size).padStart(6)}: ${formatRate(events / seconds).padStart(8)} events/s, CPU ${((cpu.user + cpu.system + childCpu) / events).toFixed(0)} µs/event (all threads${inChild ? " of both processes" : ""}, and 2 s after), ${writtenText}, ${indexLog.size} revisions` +
          (byThread === "" ? "" : `\n${"".padEnd(20)} by thread, µs/event: ${byThread}`),
      );
      await indexer.close();
      await indexLog.close();
      await indexDb.close();
    }
    await log.close();
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`# bench:index — ${machine()}; ${new Date().toISOString()}`);
if (only.has("lag")) await lagBench();
if (only.has("queries")) await queryBench();
if (only.has("revisions")) await revisionBench();
