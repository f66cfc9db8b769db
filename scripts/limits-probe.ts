/**
 * Measures the memory and event-loop limits of the real `vellum serve` (the built dist/) on
 * 127.0.0.1, one fresh server (temporary data dir) per scenario, reading the child's RSS from
 * /proc/PID/status (VmRSS now, VmHWM the peak):
 *
 *   bundles  fill the log with --bundles full entry bundles of --payload-byte entries, then read
 *            every bundle over HTTP, --passes times: RSS before, and after each pass (the bundle
 *            cache; a bounded cache keeps later passes flat).
 *   bodies   --concurrent batch bodies of 16 MiB at once, each refused at its last item (so
 *            nothing is written and only the bodies cost memory), or with --valid of unique
 *            entries that are stored: statuses, peak RSS, and RSS 2 s after the last answer.
 *   stall    while /healthz is polled back to back, POST one 16 MiB body of each bad shape
 *            (nested "[", nested {"a":, a flat array, too many tiny entries): the longest
 *            /healthz answer during each, against a quiet baseline; and, in this process, how
 *            long JSON.parse and parseJsonBody (the shape check first) take on each body.
 *
 *   npm run build && node --import tsx scripts/limits-probe.ts
 *   node --import tsx scripts/limits-probe.ts --only stall
 *   node --import tsx scripts/limits-probe.ts --only bundles --bundles 68 --payload 65000
 *   node --import tsx scripts/limits-probe.ts --serve-arg="--bundle-cache-mb 16"
 *   node --import tsx scripts/limits-probe.ts --bin /elsewhere/bin/vellum.js   # another build
 *
 * Linux only (/proc). Temporary directories are removed at the end.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatTilePath } from "../src/core/tiles.js";
import { parseJsonBody } from "../src/server/json-body.js";
import { SERVER_NODE_FLAGS } from "./lib/vellum-process.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const MiB = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    only: { type: "string", default: "bundles,bodies,stall" },
    bundles: { type: "string", default: "40" },
    payload: { type: "string", default: "32768" },
    concurrent: { type: "string", default: "40" },
    passes: { type: "string", default: "2" },
    valid: { type: "boolean", default: false },
    "serve-arg": { type: "string", multiple: true, default: [] },
    bin: { type: "string", default: path.join(REPO, "bin", "vellum.js") },
  },
});
const VELLUM_BIN = String(args.bin);

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly token: string;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "vellum-limits-"));
  const data = path.join(dir, "data");
  const extra = (args["serve-arg"] as string[]).flatMap((a) => a.split(" "));
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, VELLUM_BIN, "serve", "--data", data, "--port", "0", ...extra],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
  });
  let url: string | undefined;
  for (let i = 0; i < 400 && url === undefined; i++) {
    await new Promise((r) => setTimeout(r, 25));
    url = /serving on (http:\/\/[^\s]+)/.exec(out)?.[1];
  }
  if (url === undefined) throw new Error(`vellum serve did not start:\n${out}`);
  const token = readFileSync(path.join(data, "admin.token"), "utf8").trim();
  return {
    child,
    url,
    token,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * VmRSS (now), RssAnon (the process's own memory, the part that limits bound) and VmHWM (the
 * peak) of `pid`, in MiB. The rest of RSS is file-backed: LevelDB reads its tables through mmap,
 * and pages it touched count as resident until the kernel reclaims them.
 */
function memory(pid: number): { rss: number; anon: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  const mib = (name: string) => Math.round(kb(name) / 1024);
  return { rss: mib("VmRSS"), anon: mib("RssAnon"), peak: mib("VmHWM") };
}

const show = (m: { rss: number; anon: number }) => `${m.rss} MiB (anon ${m.anon})`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function batch(s: Server, body: string | Uint8Array): Promise<Response> {
  return fetch(`${s.url}/v1/entries/batch?proof=multi`, {
    method: "POST",
    body,
    headers: { Authorization: `Bearer ${s.token}`, "Content-Type": "application/json" },
  });
}

async function bundles(): Promise<void> {
  const count = Number(args.bundles);
  const size = Number(args.payload);
  const s = await startServer();
  try {
    const perRequest = Math.max(1, Math.floor((12 * MiB) / (size * 1.34 + 40)));
    let written = 0;
    while (written < count * 256) {
      const n = Math.min(perRequest, count * 256 - written);
      const entries = Array.from({ length: n }, () => ({
        payload: randomBytes(size).toString("base64"),
      }));
      const r = await batch(s, JSON.stringify({ entries }));
      if (r.status !== 200) throw new Error(`batch: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
      written += n;
    }
    await sleep(1500); // let the last checkpoint be signed and garbage settle
    const before = memory(s.child.pid!);
    const after: { rss: number; anon: number }[] = [];
    let bytes = 0;
    for (let pass = 0; pass < Number(args.passes); pass++) {
      for (let i = 0; i < count; i++) {
        const tile = formatTilePath({ level: "entries", index: i, width: 256 });
        const r = await fetch(`${s.url}/${tile}`, {
          headers: { Authorization: `Bearer ${s.token}` },
        });
        if (r.status !== 200) throw new Error(`${tile}: ${r.status}`);
        bytes += (await r.arrayBuffer()).byteLength;
      }
      await sleep(1500);
      after.push(memory(s.child.pid!));
    }
    console.log(
      `bundles: ${count} bundles of 256 x ${size}-byte entries, read ${args.passes} times (${(bytes / MiB).toFixed(0)} MiB): ` +
        `RSS ${show(before)} before, ${after.map(show).join(", ")} after each pass ` +
        `(peak ${memory(s.child.pid!).peak} MiB)`,
    );
  } finally {
    await s.stop();
  }
}

/**
 * A batch body of about 16 MiB of 48 KiB payloads: unique ones (--valid: stored, so the log's
 * queue and storage take their share), or all alike with an invalid last item (parsed in full,
 * then refused with 400: only the body costs memory).
 */
function batchBody(valid: boolean): Uint8Array {
  const item = () => `{"payload":"${randomBytes(48 * 1024).toString("base64")}"}`;
  const one = item();
  const n = Math.floor((16 * MiB - 100) / (one.length + 1)) - 1;
  const items = valid
    ? Array.from({ length: n + 1 }, item)
    : [...Array(n).fill(one), '{"payload":"!"}'];
  return new TextEncoder().encode(`{"entries":[${items.join(",")}]}`);
}

async function bodies(): Promise<void> {
  const concurrent = Number(args.concurrent);
  const s = await startServer();
  try {
    await sleep(500);
    const before = memory(s.child.pid!);
    const bodies = Array.from({ length: concurrent }, (_, i) =>
      args.valid || i === 0 ? batchBody(args.valid === true) : undefined,
    );
    const body = (i: number) => bodies[i] ?? bodies[0]!;
    const statuses = await Promise.all(
      Array.from({ length: concurrent }, async (_, i) => {
        const r = await batch(s, body(i));
        await r.arrayBuffer();
        return r.status;
      }),
    );
    const during = memory(s.child.pid!);
    await sleep(2000);
    const after = memory(s.child.pid!);
    const counts = new Map<number, number>();
    for (const st of statuses) counts.set(st, (counts.get(st) ?? 0) + 1);
    console.log(
      `bodies: ${concurrent} concurrent ${(body(0).length / MiB).toFixed(1)} MiB batches ` +
        `(${args.valid ? "stored" : "refused at the last item"}) ` +
        `(${[...counts].map(([k, v]) => `${v}x ${k}`).join(", ")}): RSS ${show(before)}, ` +
        `peak ${during.peak} MiB, ${show(after)} 2 s later`,
    );
  } finally {
    await s.stop();
  }
}

/**
 * The longest /healthz round trip while `during` runs, polled back to back from a child process
 * (so that this process sending a 16 MiB body does not delay the polls it measures).
 */
async function longestHealthz(s: Server, during: () => Promise<unknown>): Promise<number> {
  const poller = spawn(
    process.execPath,
    [
      "-e",
      `let max = 0, stop = false;
       process.on("message", () => { stop = true; });
       (async () => {
         while (!stop) {
           const t = performance.now();
           await (await fetch(${JSON.stringify(`${s.url}/healthz`)})).arrayBuffer();
           max = Math.max(max, performance.now() - t);
         }
         process.send(max, () => process.exit(0));
       })();`,
    ],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const longest = new Promise<number>((resolve) =>
    poller.once("message", (m) => resolve(m as number)),
  );
  await sleep(200); // the poller's first round trips
  await during();
  poller.send("stop");
  return longest;
}

async function stall(): Promise<void> {
  const size = 16 * MiB;
  const shapes: Record<string, () => string> = {
    'nested "["': () => "[".repeat(size),
    'nested {"a":': () => '{"a":'.repeat(Math.floor(size / 5)),
    "flat array [0,0,...]": () => `[${"0,".repeat(size / 2 - 2)}0]`,
    "too many entries": () => {
      const item = '{"payload":"AA=="}';
      const n = Math.floor((size - 20) / (item.length + 1));
      return `{"entries":[${Array(n).fill(item).join(",")}]}`;
    },
  };
  // The same bodies in this process, without the network: how long each holds the event loop
  // when parsed as before (decode + JSON.parse) and as now (parseJsonBody: shape check first).
  const batchShape = { maxTokens: 10_000 * 16 + 64 };
  for (const [name, make] of Object.entries(shapes)) {
    const body = new TextEncoder().encode(make());
    const t0 = performance.now();
    try {
      JSON.parse(new TextDecoder().decode(body));
    } catch {}
    const t1 = performance.now();
    let refusal = "parsed";
    try {
      parseJsonBody(body, batchShape, "not JSON");
    } catch (e) {
      refusal = (e as Error).message;
    }
    const t2 = performance.now();
    console.log(
      `stall: ${name}: in-process JSON.parse ${(t1 - t0).toFixed(0)} ms, parseJsonBody ${(t2 - t1).toFixed(1)} ms (${refusal})`,
    );
  }
  const s = await startServer();
  try {
    await sleep(300);
    const quiet = await longestHealthz(s, () => sleep(1000));
    console.log(`stall: quiet baseline, longest /healthz ${quiet.toFixed(0)} ms`);
    for (const [name, make] of Object.entries(shapes)) {
      const body = new TextEncoder().encode(make());
      let answer = "";
      const longest = await longestHealthz(s, async () => {
        const r = await batch(s, body);
        answer = `${r.status} ${(await r.text()).slice(0, 120)}`;
      });
      console.log(`stall: ${name}: longest /healthz ${longest.toFixed(0)} ms; answer ${answer}`);
    }
  } finally {
    await s.stop();
  }
}

const only = new Set(String(args.only).split(","));
if (only.has("bundles")) await bundles();
if (only.has("bodies")) await bodies();
if (only.has("stall")) await stall();
