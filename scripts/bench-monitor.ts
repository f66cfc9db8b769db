/**
 * Benchmark of the monitor (src/client/monitor.ts): how fast it reads and verifies a whole log
 * from scratch, and whether it keeps up with a log growing at a steady rate.
 *
 * A child process builds the log and serves it on 127.0.0.1 (so the server does not share the
 * monitor's event loop or core):
 * - static (default): Vellum leaves ([1, id, timestamp, payload] CBOR, --payload bytes of
 *   payload) written straight into tlog-tiles hash tiles and entry bundles in memory with the
 *   core's appendHashTiles/appendEntryBundles, a Vellum checkpoint (log signature + timestamp
 *   cosignature), and a plain node:http file server (--gzip: gzip Content-Encoding on bundles);
 * - --engine: the real Vellum engine on LevelDB (a temporary directory) and the real HTTP app
 *   (hono, gzip on tiles), filled through Log.submit: slower to build, measures the real server.
 * Then the parent runs the monitor: phase 1 reads all of it from size 0; phase 2 has the child
 * append --live-rate entries/s for --live-seconds (publishing a checkpoint every
 * --publish-ms) while the monitor polls every --interval-ms, and reports how far behind it got.
 *
 *   npm run bench:monitor                               # 1,000,000 entries, static, then live
 *   npm run bench:monitor -- --engine --entries 300000  # against the real server
 *   npm run bench:monitor -- --gzip --concurrency 16
 *
 * Options: --entries N (1,000,000), --payload BYTES (64), --concurrency N (8), --gzip,
 * --engine, --live-rate N (10,000), --live-seconds S (10; 0 skips phase 2), --publish-ms (1000),
 * --interval-ms (1000).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { serve } from "@hono/node-server";
import { TokenStore } from "../src/auth/tokens.js";
import { Monitor } from "../src/client/monitor.js";
import { TileReader } from "../src/client/tiles.js";
import { CompactRange } from "../src/core/compact.js";
import { sha256 } from "../src/core/crypto.js";
import { encodeLeafAndHash } from "../src/core/entry.js";
import {
  appendEntryBundles,
  appendHashTiles,
  type EntryBundleId,
  formatTilePath,
  type HashTileId,
} from "../src/core/tiles.js";
import { Log } from "../src/log/log.js";
import { CheckpointSigner } from "../src/log/signer.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { createApp } from "../src/server/app.js";
import { openLevelDatabase } from "../src/storage/level.js";
import { formatRate, machine } from "./lib/bench.js";

installNodeCrypto();

const { values: args } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    entries: { type: "string", default: "1000000" },
    payload: { type: "string", default: "64" },
    concurrency: { type: "string", default: "8" },
    gzip: { type: "boolean", default: false },
    engine: { type: "boolean", default: false },
    "live-rate": { type: "string", default: "10000" },
    "live-seconds": { type: "string", default: "10" },
    "publish-ms": { type: "string", default: "1000" },
    "interval-ms": { type: "string", default: "1000" },
  },
});

function count(name: keyof typeof args, min = 1): number {
  const n = Number(String(args[name]).replaceAll("_", ""));
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
}

const ENTRIES = count("entries");
const PAYLOAD = count("payload", 0);
const ORIGIN = "bench.example/log";
const SEED = new Uint8Array(32).fill(7);
const T0 = 1_700_000_000_000;

/** Entry i: a Vellum leaf with a deterministic id, timestamp and payload. */
function makeEntry(i: number): { leaf: Uint8Array; leafHash: Uint8Array } {
  const seed = sha256(new TextEncoder().encode(`bench ${i}`));
  const id = seed.slice(0, 16);
  const payload = new Uint8Array(PAYLOAD);
  for (let at = 0; at < PAYLOAD; at += 32) payload.set(seed.subarray(0, PAYLOAD - at), at);
  return encodeLeafAndHash({ id, timestamp: T0 + i, payload });
}

// ---------------------------------------------------------------------------------------------
// Child: build and serve

interface Ready {
  url: string;
  vkey: string;
  size: number;
  buildMs: number;
  bytes: number;
}

/** A static tlog-tiles log in memory that can grow and re-publish. */
function staticLog() {
  const files = new Map<string, Uint8Array>();
  const gzipped = new Map<string, Buffer>();
  const signer = new CheckpointSigner(ORIGIN, SEED);
  const range = CompactRange.empty();
  let bytes = 0;
  const put = (path: string, data: Uint8Array) => {
    const old = files.get(path);
    bytes += data.length - (old?.length ?? 0);
    files.set(path, data);
  };
  const read = (t: HashTileId | EntryBundleId) => files.get(formatTilePath(t))!;
  const log = {
    files,
    signer,
    get size() {
      return range.end;
    },
    get bytes() {
      return bytes;
    },
    append(n: number) {
      const size = range.end;
      const leaves: Uint8Array[] = [];
      const hashes: Uint8Array[] = [];
      for (let i = size; i < size + n; i++) {
        const e = makeEntry(i);
        leaves.push(e.leaf);
        hashes.push(e.leafHash);
        range.append(e.leafHash);
      }
      for (const t of appendHashTiles(size, read, hashes)) put(formatTilePath(t.tile), t.data);
      for (const b of appendEntryBundles(size, read, leaves)) put(formatTilePath(b.tile), b.data);
    },
    publish() {
      const cp = signer.sign(range.end, range.root(), Math.floor(Date.now() / 1000));
      put("checkpoint", new TextEncoder().encode(cp.note));
    },
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").slice(1);
    const data = files.get(path);
    if (data === undefined) {
      res.writeHead(404).end();
      return;
    }
    const gzip =
      args.gzip &&
      path.startsWith("tile/entries/") &&
      /\bgzip\b/.test(String(req.headers["accept-encoding"]));
    let body: Uint8Array = data;
    if (gzip) {
      body = gzipped.get(path) ?? gzipSync(data);
      if (!path.includes(".p/")) gzipped.set(path, body as Buffer);
    }
    res.writeHead(200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": body.length,
      ...(gzip ? { "Content-Encoding": "gzip" } : {}),
    });
    res.end(body);
  });
  return { log, server };
}

async function runChild(): Promise<void> {
  const started = performance.now();
  const out = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
  let grow: (n: number) => void;
  let publish: () => void;
  let size: () => number;
  let target: () => number;
  let ready: Ready;
  if (!args.engine) {
    const { log, server } = staticLog();
    for (let done = 0; done < ENTRIES; done += 65_536) log.append(Math.min(65_536, ENTRIES - done));
    log.publish();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    grow = (n) => log.append(n);
    publish = () => log.publish();
    size = () => log.size;
    target = size;
    ready = {
      url,
      vkey: log.signer.verifierKey,
      size: log.size,
      buildMs: performance.now() - started,
      bytes: log.bytes,
    };
  } else {
    const dir = mkdtempSync(join(tmpdir(), "vellum-bench-monitor-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    const db = await openLevelDatabase(join(dir, "db"));
    const log = await Log.open({ origin: ORIGIN, seed: SEED, kv: db.namespace("log") });
    const submitPayload = (i: number) => {
      const payload = new TextEncoder().encode(
        `bench ${i} ${"x".repeat(Math.max(0, PAYLOAD - 16))}`,
      );
      return log.submit(payload);
    };
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < ENTRIES; i++) {
      pending.push(submitPayload(i));
      if (pending.length >= 50_000) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const tokens = await TokenStore.open(db.namespace("tokens"));
    const app = createApp({ log, tokens, publicReads: true });
    const url = await new Promise<string>((resolve) => {
      serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
        resolve(`http://127.0.0.1:${(info as AddressInfo).port}/`),
      );
    });
    let next = ENTRIES;
    grow = (n) => {
      for (let k = 0; k < n; k++) void submitPayload(next++).catch(() => {});
    };
    publish = () => {}; // the engine signs a checkpoint per batch
    size = () => log.size;
    target = () => next;
    ready = {
      url,
      vkey: log.signer.verifierKey,
      size: log.size,
      buildMs: performance.now() - started,
      bytes: 0,
    };
  }
  out(ready);

  // Phase 2 on "go <rate> <seconds> <publishMs>": grow in 100 ms steps, publish on its period.
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, rate, seconds, publishMs] = line.split(" ");
    if (cmd !== "go") continue;
    // Each 100 ms tick appends what the rate owes since the start, so a late timer (a busy
    // event loop) does not lower the offered rate.
    const begin = Date.now();
    const until = begin + Number(seconds) * 1000;
    let grown = 0;
    let lastPublish = begin;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = Math.min(Date.now(), until);
        const owed = Math.floor(((now - begin) * Number(rate)) / 1000) - grown;
        grow(owed);
        grown += owed;
        if (now - lastPublish >= Number(publishMs)) {
          publish();
          lastPublish = now;
        }
        if (now >= until) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
    });
    publish();
    // The engine's last submissions may still be in flight: wait until they are in the tree.
    for (let i = 0; i < 200 && size() < target(); i++) await new Promise((r) => setTimeout(r, 50));
    out({ done: size(), at: Date.now() });
  }
}

// ---------------------------------------------------------------------------------------------
// Parent: the monitor

function startChild(): { child: ChildProcess; lines: AsyncIterator<string> } {
  const argv = process.argv.slice(2).filter((a) => a !== "--serve");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--serve", ...argv],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextJson<T>(lines: AsyncIterator<string>): Promise<T> {
  const { value, done } = await lines.next();
  if (done) throw new Error("the server process ended early");
  return JSON.parse(value) as T;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function runParent(): Promise<void> {
  const concurrency = count("concurrency");
  const mode = args.engine ? "Vellum engine on LevelDB + hono app" : "static tiles, node:http";
  console.log(`bench-monitor: ${machine()}`);
  console.log(
    `log: ${ENTRIES.toLocaleString("en-US")} entries, ${PAYLOAD}-byte payloads, ${mode}${args.gzip ? ", gzip bundles" : ""}; monitor concurrency ${concurrency}`,
  );
  const { child, lines } = startChild();
  try {
    const ready = await nextJson<Ready>(lines);
    console.log(
      `built in ${(ready.buildMs / 1000).toFixed(1)} s${ready.bytes > 0 ? ` (${mb(ready.bytes)} of tiles and bundles)` : ""}, serving ${ready.url}`,
    );

    // Phase 1: everything from size 0.
    const reader = new TileReader({ url: ready.url });
    const monitor = new Monitor({ reader, logKey: ready.vkey, concurrency });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await monitor.update();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `phase 1: verified ${r.size.toLocaleString("en-US")} entries from scratch in ${seconds.toFixed(2)} s = ${formatRate(r.size / seconds)} entries/s`,
    );
    console.log(
      `         ${reader.stats.requests} requests, ${mb(reader.stats.bytes)} received, monitor CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (${Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100)}% of one core), RSS ${mb(process.memoryUsage().rss)}`,
    );

    // Phase 2: keep up with a growing log.
    const rate = count("live-rate");
    const liveSeconds = count("live-seconds", 0);
    if (liveSeconds > 0) {
      const publishMs = count("publish-ms");
      const intervalMs = count("interval-ms");
      child.stdin!.write(`go ${rate} ${liveSeconds} ${publishMs}\n`);
      const finished = nextJson<{ done: number; at: number }>(lines);
      let final: { done: number; at: number } | undefined;
      void finished.then((f) => {
        final = f;
      });
      const start = monitor.size;
      const t1 = performance.now();
      let polls = 0;
      let slowest = 0;
      while (final === undefined || monitor.size < final.done) {
        const before = performance.now();
        const u = await monitor.update();
        const took = performance.now() - before;
        polls++;
        slowest = Math.max(slowest, took);
        if (final !== undefined && u.size >= final.done) break;
        await new Promise((res) => setTimeout(res, Math.max(0, intervalMs - took)));
      }
      const f = await finished;
      const lagMs = Date.now() - f.at;
      const liveTotal = (performance.now() - t1) / 1000;
      console.log(
        `phase 2: log grew by ${(f.done - start).toLocaleString("en-US")} entries at ${rate.toLocaleString("en-US")}/s for ${liveSeconds} s; ${polls} polls, slowest ${slowest.toFixed(0)} ms (interval ${intervalMs} ms)`,
      );
      console.log(
        `         caught up with the final checkpoint ${Math.max(0, lagMs)} ms after it was published (${liveTotal.toFixed(1)} s in all): ${slowest < intervalMs ? "keeps up" : "FALLS BEHIND"} at ${formatRate(rate)} entries/s`,
      );
    }
  } finally {
    child.kill();
  }
}

if (args.serve) await runChild();
else await runParent();
