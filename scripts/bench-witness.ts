/**
 * What witnessing costs: time from submit to receipt (proof included) at a steady offered rate,
 * for a log without witnesses and for the same log publishing only checkpoints cosigned by 2 of 3
 * local witness processes (`vellum witness`, LevelDB, synced state). Target: witnessing adds at
 * most 20 ms to the p50. Needs `npm run build` (the witnesses run from dist/).
 *
 *   npm run bench:witness [-- --rate 500 --seconds 5]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy } from "../src/core/policy.js";
import { Log } from "../src/log/log.js";
import { WitnessCollector } from "../src/log/witnessing.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { openLevelDatabase } from "../src/storage/level.js";
import { machine } from "./lib/bench.js";

installNodeCrypto();
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RATE = arg("rate", 500);
const SECONDS = arg("seconds", 5);
const BIN = new URL("../bin/vellum.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "vellum-bench-witness-"));
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

const SEED = new Uint8Array(32).fill(9);
const ORIGIN = "bench.example/log";

async function startWitness(i: number, logVkey: string): Promise<{ url: string; vkey: string }> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      "witness",
      "--data",
      join(dir, `w${i}`),
      "--port",
      "0",
      "--name",
      `w${i}.bench/witness`,
      "--trust",
      logVkey,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
  });
  for (;;) {
    const m = /serving on (http:\/\/[\d.:]+)/.exec(out);
    if (m)
      return { url: m[1]!, vkey: readFileSync(join(dir, `w${i}`, "witness.vkey"), "utf8").trim() };
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(name: string, witnesses?: WitnessCollector) {
  const db = await openLevelDatabase(join(dir, `log-${name}`));
  const log = await Log.open({
    origin: ORIGIN,
    seed: SEED,
    kv: db.namespace("log"),
    checkpointIntervalMs: 0,
    ...(witnesses ? { witnesses } : {}),
  });
  if (witnesses) while (log.published === undefined) await new Promise((r) => setTimeout(r, 20));
  const latencies: number[] = [];
  let unwitnessed = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = RATE * SECONDS;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    pending.push(
      log.submit(new TextEncoder().encode(`{"n":${i},"run":"${name}"}`)).then(async (r) => {
        await r.proof();
        if (!r.witnessed) unwitnessed++;
        latencies.push(performance.now() - t0);
      }),
    );
  }
  await Promise.all(pending);
  await log.close();
  await db.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  console.log(
    `${name.padEnd(28)} p50 ${q(0.5).toFixed(1).padStart(6)} ms   p99 ${q(0.99).toFixed(1).padStart(6)} ms   max ${q(1).toFixed(1).padStart(6)} ms   (${latencies.length} receipts${unwitnessed ? `, ${unwitnessed} unwitnessed` : ""})`,
  );
  return q(0.5);
}

console.log(`# Witnessing latency — ${machine()}`);
console.log(
  `# ${RATE} entries/s offered for ${SECONDS} s; time from submit to receipt with its proof\n`,
);
const logVkey = (
  await Log.open({
    origin: ORIGIN,
    seed: SEED,
    kv: (await openLevelDatabase(join(dir, "probe"))).namespace("log"),
    checkpointIntervalMs: 0,
  })
).signer.verifierKey;
const without = await run("no witnesses");
const ws = await Promise.all([0, 1, 2].map((i) => startWitness(i, logVkey)));
const policy = parsePolicy(
  [
    `log ${logVkey}`,
    ...ws.map((w, i) => `witness w${i} ${w.vkey} ${w.url}`),
    "group q 2 w0 w1 w2",
    "quorum q",
    "",
  ].join("\n"),
);
const withW = await run("3 witnesses, quorum 2 of 3", new WitnessCollector(policy));
console.log(`\nwitnessing adds ${(withW - without).toFixed(1)} ms to the p50 (target ≤ 20 ms)`);
process.exit(0);
