/**
 * HTTP benchmark of `vellum serve` against a bare hono app, in the same run, on 127.0.0.1.
 *
 * Three processes: this one runs the load generator (autocannon, keep-alive, one request in
 * flight per connection) and starts two servers as children:
 *   (a) a bare hono app on @hono/node-server 2 (this file with --bare-server): POST /post reads
 *       the body, GET /get answers; both reply with JSON of about the size Vellum replies with
 *       (a receipt, a proof), so the comparison charges Vellum for its work, not for its bytes;
 *   (b) the real server, `node bin/vellum.js serve` (the built dist/) on a temporary data dir.
 * Phases (each a short warm-up, then --seconds measured):
 *   bare POST       POST /post with a unique body per request
 *   floor           POST /floor on the bare app: the least a durable, signed log can do for one
 *                   submission (scripts/lib/floor-log.ts: token, leaf hash, group commit of one
 *                   synced LevelDB write and one signature per batch, a receipt with its proof)
 *   single          POST /v1/entries, one unique payload per request, answered with a receipt
 *   batch           POST /v1/entries/batch?proof=multi, --batch unique payloads per request,
 *                   answered as the SDK asks: one checkpoint and one multiproof per request
 *   batch-full      the same with ?proof=full: the server writes out every entry's receipt
 *   bare GET        GET /get?index=<random>
 *   proof           GET /v1/proofs/inclusion?index=<random below the tree size>
 *   entry           GET /v1/entries/<random index> with a read token (the entry, checked
 *                   against the tree before it is served)
 *   bundle          GET /tile/entries/<random full bundle> with a read token (64 KiB or so each)
 * and, only when named in --only, bare-post-limit: the bare POST behind hono's bodyLimit
 * middleware (which Vellum's POST routes use), to price that middleware alone.
 * For the write phases "acknowledged" counts 2xx answers (× entries per request) and is checked
 * against the tree's growth; a receipt from each write phase is verified with the log's key.
 * The generator shares the machine with the servers: on a small machine it takes a core of its
 * own, so absolute rates are a floor; the ratios to the bare app measured in the same run are
 * the robust figure.
 *
 *   npm run bench:http
 *   npm run bench:http -- --seconds 5 --connections 128 --only single,proof
 *   npm run bench:http -- --node-arg=--max-semi-space-size=64 --serve-arg="--batch-max-age-ms 2"
 *   npm run bench:http -- --profile prof   # CPU-profile the vellum child: where each phase's time
 *                                          # goes (top --top functions by self and total time)
 *
 * Temporary directories live under os.tmpdir() and are removed at the end (or on Ctrl-C).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { resultsFromMultiproof } from "../src/client/http.js";
import { base64Encode } from "../src/core/bytes.js";
import { openCheckpoint } from "../src/core/checkpoint.js";
import { leafFromFields } from "../src/core/entry.js";
import { verifierFromKey } from "../src/core/keys.js";
import { hashLeaf } from "../src/core/rfc6962.js";
import { formatTilePath, TILE_WIDTH } from "../src/core/tiles.js";
import { parseTlogProof, verifyTlogProof } from "../src/core/tlog-proof.js";
import { verifyInclusion } from "../src/core/verify.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { cpuSeconds, formatRate, machine, perThread, threadCpu } from "./lib/bench.js";
import { addFloorRoute, FLOOR_TOKEN } from "./lib/floor-log.js";
import { SERVER_NODE_FLAGS } from "./lib/vellum-process.js";

const HOST = "127.0.0.1";
const SELF = fileURLToPath(import.meta.url);
const REPO = fileURLToPath(new URL("../", import.meta.url));
const VELLUM_BIN = path.join(REPO, "bin", "vellum.js");

// ---------------------------------------------------------------------------------------------
// Options

const { values: args } = parseArgs({
  options: {
    "bare-server": { type: "boolean", default: false },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "128" },
    batch: { type: "string", default: "100" },
    "payload-bytes": { type: "string", default: "128" },
    only: { type: "string" },
    profile: { type: "string" },
    top: { type: "string", default: "20" },
    "serve-arg": { type: "string", multiple: true, default: [] },
    "node-arg": { type: "string", multiple: true, default: [] },
  },
});

function count(name: string, text: string, min = 1): number {
  const n = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// (a) The bare app, run as a child: `node --import tsx scripts/bench-http.ts --bare-server`

/** JSON filler so the bare replies are about as large as Vellum's (a receipt, a proof). */
const filler = (bytes: number) => "A".repeat(bytes);

function runBareServer(): void {
  const postFill = filler(1200);
  const getFill = filler(900);
  const app = new Hono();
  const closeFloor = addFloorRoute(app);
  app.post("/post", async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    return c.body(JSON.stringify({ bytes: body.length, receipt: postFill }), 201, {
      "Content-Type": "application/json",
    });
  });
  // Diagnostic: the same route behind hono's bodyLimit middleware, as Vellum's POST routes are.
  app.post("/post-limited", bodyLimit({ maxSize: 65_000 }), async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    return c.body(JSON.stringify({ bytes: body.length, receipt: postFill }), 201, {
      "Content-Type": "application/json",
    });
  });
  app.get("/get", (c) =>
    c.body(JSON.stringify({ index: Number(c.req.query("index") ?? 0), proof: getFill }), 200, {
      "Content-Type": "application/json",
    }),
  );
  const server = serve({ fetch: app.fetch, port: 0, hostname: HOST }, (info) => {
    console.log(`bare hono serving on http://${HOST}:${info.port}`);
  });
  process.on("SIGTERM", () => server.close(() => void closeFloor().finally(() => process.exit(0))));
}

// ---------------------------------------------------------------------------------------------
// The load generator: autocannon 9 (CommonJS, untyped; the part used here is typed below).

interface AutocannonRequest {
  method?: string;
  path?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { total: number; average: number };
  throughput: { total: number };
}

type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  pipelining?: number;
  timeout?: number;
  headers?: Record<string, string>;
  requests: { method: string; setupRequest?: (r: AutocannonRequest) => AutocannonRequest }[];
}) => Promise<AutocannonResult>;

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

interface Measured {
  name: string;
  /** Acknowledged units (entries or requests) per second. */
  rate: number;
  unit: string;
  result: AutocannonResult;
  /** CPU seconds the server process and this (generator) process used in the measured run. */
  serverCpu: number | undefined;
  /** The server's CPU in the measured run by thread, µs per unit ("main 120, node 40"). */
  serverThreads: string;
  generatorCpu: number;
}

/** User + system CPU seconds of a process so far (Linux /proc; undefined elsewhere). */

/**
 * Waits (at most 30 s) until the vellum server is quiet: below 0.1 cores over half a second.
 * The write phases leave LevelDB compacting for a while on a background thread, and on a
 * 2-core machine that takes CPU from whatever phase runs next (bare or vellum), so each phase
 * starts at rest. Returns the seconds waited.
 */
let settleOn: ChildProcess | undefined;
async function settle(): Promise<number> {
  const started = performance.now();
  for (;;) {
    const a = cpuSeconds(settleOn?.pid);
    await new Promise((r) => setTimeout(r, 500));
    const b = cpuSeconds(settleOn?.pid);
    const waited = (performance.now() - started) / 1000;
    if (a === undefined || b === undefined || b - a < 0.05 || waited > 30) return waited;
  }
}

/** Runs `--warmup` seconds unmeasured, then `--seconds` measured. */
async function load(
  name: string,
  url: string,
  request: { method: string; setupRequest?: (r: AutocannonRequest) => AutocannonRequest },
  options: {
    connections: number;
    seconds: number;
    warmup: number;
    perRequest?: number;
    server?: ChildProcess;
  },
  headers: Record<string, string> = {},
): Promise<Measured> {
  const run = (duration: number) =>
    autocannon({
      url,
      connections: options.connections,
      duration,
      pipelining: 1,
      timeout: 30,
      headers,
      requests: [request],
    });
  const settled = await settle();
  if (settled > 1)
    console.log(
      `${"".padEnd(44)} (waited ${settled.toFixed(1)} s for the server's compaction to settle)`,
    );
  if (options.warmup > 0) await run(options.warmup);
  const server0 = cpuSeconds(options.server?.pid);
  const threads0 = threadCpu(options.server?.pid);
  const self0 = process.cpuUsage();
  const start = nowMicros();
  const result = await run(options.seconds);
  windows.push({ name, start, end: nowMicros(), requests: result["2xx"] });
  const self = process.cpuUsage(self0);
  const server1 = cpuSeconds(options.server?.pid);
  const threads1 = threadCpu(options.server?.pid);
  const perRequest = options.perRequest ?? 1;
  return {
    name,
    rate: (result["2xx"] * perRequest) / result.duration,
    unit: perRequest === 1 ? "req/s" : "entries/s",
    result,
    serverCpu: server0 === undefined || server1 === undefined ? undefined : server1 - server0,
    serverThreads: perThread(threads0, threads1, result["2xx"] * perRequest),
    generatorCpu: (self.user + self.system) / 1e6,
  };
}

function report(m: Measured, extra = ""): void {
  const r = m.result;
  const bytesPerReq = r.requests.total > 0 ? r.throughput.total / r.requests.total : 0;
  const codes = Object.entries(r.statusCodeStats)
    .map(([code, { count }]) => `${code}×${count}`)
    .join(" ");
  const units = m.rate * r.duration;
  const cpu =
    m.serverCpu === undefined || units === 0
      ? ""
      : `\n${"".padEnd(44)} server CPU ${((1e6 * m.serverCpu) / units).toFixed(0)} µs per ${m.unit.startsWith("entries") ? "entry" : "request"}` +
        ` (${(m.serverCpu / r.duration).toFixed(2)} cores busy); generator ${(m.generatorCpu / r.duration).toFixed(2)} cores` +
        (m.serverThreads === "" ? "" : `\n${"".padEnd(44)} by thread, µs: ${m.serverThreads}`);
  console.log(
    `${m.name.padEnd(44)} ${formatRate(m.rate).padStart(8)} ${m.unit.padEnd(9)}` +
      ` p50 ${r.latency.p50.toFixed(1).padStart(6)} ms  p99 ${r.latency.p99.toFixed(1).padStart(6)} ms` +
      `  [${codes}; errors ${r.errors}, timeouts ${r.timeouts}; ~${Math.round(bytesPerReq)} B/response]${cpu}${extra}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Children

const children = new Set<ChildProcess>();

/** Spawns a server and resolves with its URL once it prints "serving on http://...". */
function startChild(
  label: string,
  argv: string[],
): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, argv, {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  children.add(child);
  const exited = new Promise<number | null>((done) =>
    child.on("exit", (code) => {
      children.delete(child);
      done(code);
    }),
  );
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    err += s;
    if (err.length > 65_536) err = err.slice(-65_536);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start:\n${err}`)), 15_000);
    // Read until the URL, then only drained: the server logs a line per request, and keeping
    // (and scanning) all of it here cost this process more CPU than the load it generated
    // (quadratic: the whole output searched again on every chunk), taken from the same two cores.
    const onData = (s: string) => {
      out += s;
      const m = /serving on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        out = "";
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        resolve({ child, url: m[1]!, exited });
      }
    };
    child.stdout!.setEncoding("utf8").on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code}) at start:\n${err}`));
    });
  });
}

const tempDirs: string[] = [];

function cleanup(): void {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Spot checks with the verifier library

async function http(url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${await res.text()}`);
  return res;
}

// ---------------------------------------------------------------------------------------------
// CPU profile summary. A V8 .cpuprofile is a call tree (nodes), the node of each sample, and
// the time between samples; its clock is CLOCK_MONOTONIC in µs, the same clock as
// process.hrtime here, so the samples of each measured phase can be picked out of one profile.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Measured phases on the vellum child, as monotonic µs windows. */
const windows: { name: string; start: number; end: number; requests?: number }[] = [];

/**
 * The stages of the vellum child's main thread, for the per-request breakdown: a sample goes to
 * the first stage one of its frames matches, from the event loop's root down (so the route's
 * call into the log counts as the log's), else to HTTP by what node was doing.
 */
const STAGES: [string, RegExp][] = [
  ["request log line", /platform\/logger|\bpino\/|sonic-boom/],
  ["authentication (bearer token)", /dist\/auth\//],
  ["sequencer: prepare (dedup, ids, leaves, hashes, tree)", /^#prepare .*log\/sequencer/],
  ["sequencer: commit (sign, storage, answer)", /^#commit .*log\/sequencer|dist\/storage\//],
  ["receipt (proof, JSON)", /receipt|log\/reader|tlog-proof|log\/tree/],
  [
    "submit route (body, checks, queue)",
    /server\/routes|server\/json-body|server\/body-budget|server\/http\.js|log\/queue/,
  ],
  ["index engine (its main-thread part)", /dist\/indexing\//],
];
const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

function summariseProfile(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as {
    nodes: ProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const where = (url: string) =>
    url
      .replace(/^file:\/\//, "")
      .replace(REPO, "")
      .replace(/^.*node_modules\//, "");
  const keyOf = (n: ProfileNode) => {
    const f = n.callFrame;
    const name = f.functionName || "(anonymous)";
    return f.url === "" ? name : `${name}  ${where(f.url)}:${f.lineNumber + 1}`;
  };
  const area = (n: ProfileNode) => {
    const u = n.callFrame.url;
    if (u === "") return n.callFrame.functionName || "(native)"; // (idle), (garbage collector)...
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
    if (m !== null) return m[1]!;
    const d = /\/dist\/([^/]+)\//.exec(u);
    if (d !== null) return `vellum dist/${d[1]}`;
    if (u.startsWith("node:")) return "node internals";
    return "other";
  };
  // Sample timestamps.
  const times: number[] = [];
  let t = profile.startTime;
  for (const dt of profile.timeDeltas) {
    t += dt;
    times.push(t);
  }
  const stageOf = (id: number): string | undefined => {
    const leaf = byId.get(id)!.callFrame.functionName;
    if (leaf === "(idle)") return undefined;
    if (leaf === "(garbage collector)") return "garbage collection";
    const frames: string[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      frames.push(`${f.functionName} ${f.url}`);
    }
    frames.reverse();
    for (const frame of frames) for (const [stage, re] of STAGES) if (re.test(frame)) return stage;
    const stack = frames.join("|");
    if (/writev|writeString|_http_outgoing|stream_base_commons|node:net/.test(stack)) {
      return "HTTP: writing answers (node)";
    }
    if (/_http_common|_http_server|hono|@hono\/node-server/.test(stack)) {
      return "HTTP: parsing, routing, answer objects (node, hono)";
    }
    return "other (event loop, promises, timers)";
  };
  const summarise = (name: string, from: number, to: number, requests?: number) => {
    const stages = new Map<string, number>();
    const self = new Map<string, number>();
    const total = new Map<string, number>();
    const areas = new Map<string, number>();
    let all = 0;
    profile.samples.forEach((id, i) => {
      if (times[i]! < from || times[i]! >= to) return;
      const dt = profile.timeDeltas[i] ?? 0;
      const node = byId.get(id)!;
      all += dt;
      if (requests !== undefined) {
        const stage = stageOf(id);
        if (stage !== undefined) stages.set(stage, (stages.get(stage) ?? 0) + dt);
      }
      self.set(keyOf(node), (self.get(keyOf(node)) ?? 0) + dt);
      areas.set(area(node), (areas.get(area(node)) ?? 0) + dt);
      const seen = new Set<string>(); // recursion counts once
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const k = keyOf(byId.get(n)!);
        if (seen.has(k)) continue;
        seen.add(k);
        total.set(k, (total.get(k) ?? 0) + dt);
      }
    });
    if (all === 0) return;
    const pct = (us: number) => `${((100 * us) / all).toFixed(1).padStart(5)}%`;
    const print = (title: string, m: Map<string, number>, n: number, skipRoots: boolean) => {
      console.log(title);
      [...m.entries()]
        .filter(([k]) => !skipRoots || !/^\((root|program|idle|garbage collector)\)/.test(k))
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .forEach(([k, us]) => {
          console.log(`  ${pct(us)}  ${k}`);
        });
    };
    console.log(`\n### ${name}: ${(all / 1e6).toFixed(1)} s of samples`);
    if (requests !== undefined && requests > 0) {
      console.log(`main thread per request by stage (${requests} requests), µs:`);
      let busy = 0;
      [...stages.entries()]
        .sort((a, b) => b[1] - a[1])
        .forEach(([stage, us]) => {
          busy += us;
          console.log(`  ${(us / requests).toFixed(1).padStart(6)}  ${pct(us)}  ${stage}`);
        });
      console.log(
        `  ${(busy / requests).toFixed(1).padStart(6)}  ${pct(busy)}  busy (the rest idle)`,
      );
    }
    print("self time by area:", areas, 12, false);
    print(`top ${top} functions by self time:`, self, top, false);
    print(`top ${top} functions by total (inclusive) time:`, total, top, true);
  };
  console.log(`\n## CPU profile of the vellum child (${file})`);
  for (const w of windows.filter((w) => w.name.startsWith("vellum"))) {
    summarise(w.name, w.start, w.end, w.requests);
  }
  summarise("whole run", Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  installNodeCrypto();
  const seconds = count("seconds", args.seconds);
  const warmup = count("warmup", args.warmup, 0);
  const connections = count("connections", args.connections);
  const batchSize = count("batch", args.batch);
  const payloadBytes = count("payload-bytes", args["payload-bytes"], 16);
  const phases = new Set(
    (args.only ?? "bare-post,floor,single,batch,batch-full,bare-get,proof,entry,bundle").split(","),
  );
  const opts = { connections, seconds, warmup };

  console.log(`# Vellum HTTP benchmark — ${machine()}`);
  console.log(
    `# ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}; tmpdir ${os.tmpdir()}`,
  );
  console.log(
    `# autocannon in this process; servers in child processes; ${connections} keep-alive connections, 1 request in flight each; ` +
      `${warmup} s warm-up + ${seconds} s measured per phase; payloads ${payloadBytes} B; batch requests of ${batchSize} entries`,
  );

  const dataDir = mkdtempSync(path.join(os.tmpdir(), "vellum-bench-http-"));
  tempDirs.push(dataDir);
  // Both servers run with the flags `vellum` sets for itself (bin/vellum.js), the bare one too.
  const nodeFlags: string[] = [...SERVER_NODE_FLAGS, ...args["node-arg"]];
  let profileDir: string | undefined;
  if (args.profile !== undefined) {
    profileDir = path.resolve(args.profile);
    nodeFlags.push("--cpu-prof", `--cpu-prof-dir=${profileDir}`);
  }
  const bare = await startChild("bare hono", [
    ...SERVER_NODE_FLAGS,
    "--import",
    "tsx",
    SELF,
    "--bare-server",
  ]);
  const vellum = await startChild("vellum serve", [
    ...nodeFlags,
    VELLUM_BIN,
    "serve",
    "--data",
    dataDir,
    "--port",
    "0",
    "--host",
    HOST,
    ...args["serve-arg"].flatMap((a) => a.split(" ")),
  ]);
  settleOn = vellum.child;
  console.log(`# bare app ${bare.url}; vellum ${vellum.url} (data ${dataDir})`);
  if (args["serve-arg"].length > 0 || args["node-arg"].length > 0) {
    console.log(`# node ${args["node-arg"].join(" ")} vellum serve ${args["serve-arg"].join(" ")}`);
  }
  console.log(`# both servers: node ${SERVER_NODE_FLAGS.join(" ")} (as bin/vellum.js runs itself)`);

  const token = readFileSync(path.join(dataDir, "admin.token"), "utf8").trim();
  const verifier = verifierFromKey(readFileSync(path.join(dataDir, "log.vkey"), "utf8").trim());
  const auth = { Authorization: `Bearer ${token}` };
  const treeSize = async () => {
    const note = await (await http(`${vellum.url}/checkpoint`)).text();
    return openCheckpoint(note, verifier).checkpoint;
  };
  /** The sequencer's batch histograms (count, sum) from /metrics. */
  const batches = async () => {
    const text = await (await http(`${vellum.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    return {
      count: value("vellum_batch_entries_count"),
      entries: value("vellum_batch_entries_sum"),
      seconds: value("vellum_sequencing_seconds_sum"),
    };
  };
  /** What the sequencer did between two `batches()` readings. */
  const batchStats = (a: Awaited<ReturnType<typeof batches>>, b: typeof a) => {
    const n = b.count - a.count;
    if (!(n > 0)) return "no batches";
    return `${n} sequencer batches, ${((b.entries - a.entries) / n).toFixed(1)} entries and ${((1000 * (b.seconds - a.seconds)) / n).toFixed(1)} ms (dequeue → checkpoint stored) each on average`;
  };

  // Unique payloads: run id, phase, connection-independent counter, padded to the size asked.
  const run = `${process.pid}-${Date.now()}`;
  let n = 0;
  const pad = (s: string) =>
    s.length >= payloadBytes ? s : s + ".".repeat(payloadBytes - s.length);
  const nextPayload = (tag: string) => pad(`{"bench":"${run}","phase":"${tag}","n":${n++}}`);

  const results: Measured[] = [];
  const out = (m: Measured, extra = "") => {
    results.push(m);
    report(m, extra);
  };

  const onBare = { ...opts, server: bare.child };
  const onVellum = { ...opts, server: vellum.child };

  console.log("");
  if (phases.has("bare-post")) {
    out(
      await load(
        "bare hono POST /post (reads body)",
        `${bare.url}/post`,
        {
          method: "POST",
          setupRequest: (r) => ({ ...r, body: nextPayload("bare") }),
        },
        onBare,
        { "Content-Type": "application/octet-stream" },
      ),
    );
  }

  if (phases.has("floor")) {
    out(
      await load(
        "floor POST /floor (least durable signed log)",
        `${bare.url}/floor`,
        {
          method: "POST",
          setupRequest: (r) => ({ ...r, body: nextPayload("floor") }),
        },
        onBare,
        { "Content-Type": "application/octet-stream", Authorization: `Bearer ${FLOOR_TOKEN}` },
      ),
    );
  }

  if (phases.has("bare-post-limit")) {
    out(
      await load(
        "bare hono POST /post-limited (+ bodyLimit)",
        `${bare.url}/post-limited`,
        { method: "POST", setupRequest: (r) => ({ ...r, body: nextPayload("bare") }) },
        onBare,
        { "Content-Type": "application/octet-stream" },
      ),
    );
  }

  const checkSingle = async () => {
    const payload = Buffer.from(nextPayload("check"));
    const r = (await (
      await http(`${vellum.url}/v1/entries`, { method: "POST", headers: auth, body: payload })
    ).json()) as { receipt: string; index: number };
    const extra = parseTlogProof(r.receipt).extra!;
    verifyTlogProof(r.receipt, hashLeaf(leafFromFields(extra, payload)), verifier);
    return r.index;
  };

  if (phases.has("single")) {
    const before = (await treeSize()).size;
    const seq = await batches();
    const m = await load(
      "vellum POST /v1/entries (1 entry, receipt)",
      `${vellum.url}/v1/entries`,
      { method: "POST", setupRequest: (r) => ({ ...r, body: nextPayload("single") }) },
      onVellum,
      { ...auth, "Content-Type": "application/octet-stream" },
    );
    await new Promise((r) => setTimeout(r, 200));
    const grew = (await treeSize()).size - before;
    const seqStats = batchStats(seq, await batches());
    const index = await checkSingle();
    out(
      m,
      `\n${"".padEnd(44)} tree grew by ${grew} in warm-up + run; a fresh receipt (#${index}) verifies` +
        `\n${"".padEnd(44)} ${seqStats}`,
    );
  }

  // Batches, answered the way the SDK asks (`?proof=multi`: one checkpoint and one multiproof
  // per request, receipts rebuilt by the client) and, as "batch-full", with every receipt
  // written out by the server.
  for (const mode of ["multi", "full"] as const) {
    if (!phases.has(mode === "multi" ? "batch" : "batch-full")) continue;
    const route = `/v1/entries/batch?proof=${mode}`;
    const before = (await treeSize()).size;
    const seq = await batches();
    const batchBody = () =>
      JSON.stringify({
        entries: Array.from({ length: batchSize }, () => ({
          payload: Buffer.from(nextPayload("batch")).toString("base64"),
        })),
      });
    const m = await load(
      `vellum POST ${route} (${batchSize} entries)`,
      `${vellum.url}${route}`,
      { method: "POST", setupRequest: (r) => ({ ...r, body: batchBody() }) },
      { ...onVellum, perRequest: batchSize },
      { ...auth, "Content-Type": "application/json" },
    );
    await new Promise((r) => setTimeout(r, 200));
    const grew = (await treeSize()).size - before;
    const seqStats = batchStats(seq, await batches());
    // One batch checked entry by entry.
    const payloads = [nextPayload("check"), nextPayload("check")].map((p) => Buffer.from(p));
    const answer = (await (
      await http(`${vellum.url}${route}`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify({ entries: payloads.map((p) => ({ payload: base64Encode(p) })) }),
      })
    ).json()) as { results: { status: number; receipt: string }[] };
    const receipts =
      mode === "multi"
        ? resultsFromMultiproof(answer as unknown as Record<string, unknown>).map((r) => r.receipt)
        : answer.results.map((r) => r.receipt);
    receipts.forEach((receipt, i) => {
      const extra = parseTlogProof(receipt).extra!;
      verifyTlogProof(receipt, hashLeaf(leafFromFields(extra, payloads[i]!)), verifier);
    });
    out(
      m,
      `\n${"".padEnd(44)} ${formatRate(m.result["2xx"] / m.result.duration)} req/s; tree grew by ${grew} in warm-up + run; a fresh batch's receipts verify` +
        `\n${"".padEnd(44)} ${seqStats}`,
    );
  }

  if (phases.has("bare-get")) {
    // A random index per request, as the proof phase sends: the generator then does the same
    // work per request in both phases (a fixed path would be cheaper for it to send).
    const bound = 1_000_000;
    out(
      await load(
        "bare hono GET /get?index=random",
        `${bare.url}/get`,
        {
          method: "GET",
          setupRequest: (r) => ({ ...r, path: `/get?index=${Math.floor(Math.random() * bound)}` }),
        },
        onBare,
      ),
    );
  }

  /** A tree to read from: whatever the write phases left, or a quick fill. */
  const treeToRead = async () => {
    let cp = await treeSize();
    if (cp.size < 100_000) {
      await load(
        "(fill)",
        `${vellum.url}/v1/entries/batch`,
        {
          method: "POST",
          setupRequest: (r) => ({
            ...r,
            body: JSON.stringify({
              entries: Array.from({ length: 1000 }, () => ({
                payload: Buffer.from(nextPayload("fill")).toString("base64"),
              })),
            }),
          }),
        },
        { connections: 16, seconds: 3, warmup: 0 },
        { ...auth, "Content-Type": "application/json" },
      );
      cp = await treeSize();
    }
    return cp;
  };

  if (phases.has("proof")) {
    const cp = await treeToRead();
    const size = cp.size;
    const m = await load(
      `vellum GET /v1/proofs/inclusion?index=random`,
      `${vellum.url}/v1/proofs/inclusion`,
      {
        method: "GET",
        setupRequest: (r) => ({
          ...r,
          path: `/v1/proofs/inclusion?index=${Math.floor(Math.random() * size)}`,
        }),
      },
      onVellum,
    );
    // Spot checks: a few proofs against the checkpoint, with the leaf hash read back.
    const latest = await treeSize();
    for (let k = 0; k < 5; k++) {
      const i = Math.floor(Math.random() * latest.size);
      const p = (await (
        await http(`${vellum.url}/v1/proofs/inclusion?index=${i}&size=${latest.size}`)
      ).json()) as { proof: string[] };
      const e = (await (await http(`${vellum.url}/v1/entries/${i}`, { headers: auth })).json()) as {
        leafHash: string;
      };
      verifyInclusion(
        i,
        latest.size,
        Buffer.from(e.leafHash, "base64"),
        p.proof.map((h) => Buffer.from(h, "base64")),
        latest.rootHash,
      );
    }
    out(m, `\n${"".padEnd(44)} tree of ${size} entries; 5 random proofs verify`);
  }

  if (phases.has("entry")) {
    const size = (await treeToRead()).size;
    const m = await load(
      "vellum GET /v1/entries/<random index>",
      `${vellum.url}/v1/entries/0`,
      {
        method: "GET",
        setupRequest: (r) => ({ ...r, path: `/v1/entries/${Math.floor(Math.random() * size)}` }),
      },
      onVellum,
      auth,
    );
    out(
      m,
      `\n${"".padEnd(44)} tree of ${size} entries; read token; every entry checked against the tree`,
    );
  }

  if (phases.has("bundle")) {
    const size = (await treeToRead()).size;
    const full = Math.floor(size / TILE_WIDTH);
    const m = await load(
      "vellum GET /tile/entries/<random full bundle>",
      `${vellum.url}/tile/entries/000`,
      {
        method: "GET",
        setupRequest: (r) => ({
          ...r,
          path: `/${formatTilePath({ level: "entries", index: Math.floor(Math.random() * full), width: TILE_WIDTH })}`,
        }),
      },
      onVellum,
      auth,
    );
    const mib = m.result.throughput.total / m.result.duration / 1048576;
    out(m, `\n${"".padEnd(44)} ${full} full bundles of 256 entries; ${mib.toFixed(0)} MiB/s`);
  }

  // Summary against the targets.
  const get = (prefix: string) => results.find((r) => r.name.startsWith(prefix))?.rate;
  const bp = get("bare hono POST");
  const floor = get("floor POST");
  const bg = get("bare hono GET");
  const single = get("vellum POST /v1/entries (");
  const batch = get("vellum POST /v1/entries/batch?proof=multi");
  const batchFull = get("vellum POST /v1/entries/batch?proof=full");
  const proof = get("vellum GET");
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  console.log("\n## against the targets");
  if (single !== undefined) {
    const ratio = bp === undefined ? undefined : single / bp;
    console.log(
      `single entries ${formatRate(single)}/s (target ≥ 15k: ${verdict(single >= 15_000)})` +
        (ratio === undefined
          ? ""
          : `, ${(100 * ratio).toFixed(0)}% of bare POST (target ≥ 60%: ${verdict(ratio >= 0.6)})`),
    );
  }
  if (floor !== undefined && bp !== undefined) {
    console.log(
      `the floor (least durable signed log, same machine, same run) ${formatRate(floor)}/s = ${((100 * floor) / bp).toFixed(0)}% of bare POST` +
        (single === undefined
          ? ""
          : `; single entries are ${((100 * single) / floor).toFixed(0)}% of the floor`),
    );
  }
  if (batch !== undefined) {
    console.log(
      `batched entries ${formatRate(batch)}/s (target ≥ 50k: ${verdict(batch >= 50_000)}; SDK's multiproof answers)`,
    );
  }
  if (batchFull !== undefined) {
    console.log(
      `batched entries with every receipt written by the server ${formatRate(batchFull)}/s`,
    );
  }
  if (proof !== undefined) {
    const ratio = bg === undefined ? undefined : proof / bg;
    console.log(
      `inclusion proofs ${formatRate(proof)}/s (target ≥ 15k: ${verdict(proof >= 15_000)})` +
        (ratio === undefined
          ? ""
          : `, ${(100 * ratio).toFixed(0)}% of bare GET (target ≥ 70%: ${verdict(ratio >= 0.7)})`),
    );
  }

  // Stop: bare app, then vellum with SIGTERM (drains, signs, writes its CPU profile).
  bare.child.kill("SIGTERM");
  vellum.child.kill("SIGTERM");
  const [bareCode, vellumCode] = await Promise.all([bare.exited, vellum.exited]);
  if (vellumCode !== 0) console.log(`! vellum serve exited with ${vellumCode}`);
  if (bareCode !== 0) console.log(`! bare app exited with ${bareCode}`);
  if (profileDir !== undefined) {
    // One profile per thread of the vellum child (CPU.<date>.<time>.<pid>.<thread>.<seq>): the
    // main thread's first, then each worker's (the index works in one).
    const files = readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"));
    const pid = String(vellum.child.pid);
    const threadOf = (f: string) => Number(f.split(".")[4]);
    const mine = files
      .filter((f) => f.split(".")[3] === pid)
      .sort((a, b) => threadOf(a) - threadOf(b));
    for (const f of mine) {
      console.log(`\n# ${threadOf(f) === 0 ? "main thread" : `worker thread ${threadOf(f)}`}`);
      summariseProfile(path.join(profileDir, f), count("top", args.top));
    }
  }
}

if (args["bare-server"]) {
  runBareServer();
} else {
  process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  try {
    await main();
  } finally {
    cleanup();
  }
}
