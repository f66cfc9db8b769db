/**
 * Benchmark of entry reads with and without the access log (spec/audit.md, "The access log"),
 * in the same run, on 127.0.0.1: `vellum serve` (the built dist/, the index off in both so only
 * the access log differs) on a fresh data directory holding --entries entries, then
 * `GET /v1/entries/<random index>` with a read token from autocannon (--connections keep-alive
 * connections, one request in flight each) for --seconds after a 2 s warm-up. With the access
 * log every answer waits until its record is durable (batched like the log's entries).
 *
 *   npm run bench:access
 *   npm run bench:access -- --seconds 20 --connections 64
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cpuSeconds, formatRate, machine } from "./lib/bench.js";
import { startVellum } from "./lib/vellum-process.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    entries: { type: "string", default: "10000" },
  },
});
const seconds = Number(args.seconds);
const connections = Number(args.connections);
const entries = Number(args.entries);

type Autocannon = (opts: Record<string, unknown>) => Promise<{
  duration: number;
  "2xx": number;
  non2xx: number;
  errors: number;
  latency: { p50: number; p99: number };
}>;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

async function run(withAccessLog: boolean) {
  const data = mkdtempSync(join(os.tmpdir(), "vellum-bench-access-"));
  const server = await startVellum(
    [
      "serve",
      "--data",
      data,
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--no-index",
      ...(withAccessLog ? ["--access-log"] : []),
    ],
    "/readyz",
  );
  try {
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const auth = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
    for (let i = 0; i < entries; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, entries - i) }, (_, k) => ({
        payload: Buffer.from(`entry ${i + k}: ${"lorem ipsum ".repeat(8)}`).toString("base64"),
      }));
      const res = await fetch(`${server.url}/v1/entries/batch?proof=multi`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ entries: batch }),
      });
      if (!res.ok) throw new Error(`filling the log: HTTP ${res.status}`);
    }
    const load = (duration: number) =>
      autocannon({
        url: server.url,
        connections,
        duration,
        pipelining: 1,
        timeout: 30,
        headers: { Authorization: `Bearer ${token}` },
        requests: [
          {
            method: "GET",
            setupRequest: (r: Record<string, unknown>) => ({
              ...r,
              path: `/v1/entries/${Math.floor(Math.random() * entries)}`,
            }),
          },
        ],
      });
    await load(2);
    const cpu0 = cpuSeconds(server.child.pid);
    const result = await load(seconds);
    const cpu1 = cpuSeconds(server.child.pid);
    const recorded = withAccessLog
      ? Number((await (await fetch(`${server.url}/access/checkpoint`)).text()).split("\n")[1])
      : 0;
    return {
      rate: result["2xx"] / result.duration,
      result,
      recorded,
      cpu:
        cpu0 === undefined || cpu1 === undefined
          ? undefined
          : (1e6 * (cpu1 - cpu0)) / result["2xx"],
    };
  } finally {
    await server.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

console.log(`# bench:access — ${machine()}; ${new Date().toISOString()}`);
console.log(
  `GET /v1/entries/<random of ${entries}>, ${connections} connections, ${seconds} s after a 2 s warm-up`,
);
const without = await run(false);
const withLog = await run(true);
for (const [name, r] of [
  ["without the access log", without],
  ["with the access log", withLog],
] as const) {
  console.log(
    `${name.padEnd(24)} ${formatRate(r.rate).padStart(8)} reads/s  p50 ${r.result.latency.p50.toFixed(1)} ms  p99 ${r.result.latency.p99.toFixed(1)} ms` +
      `  [non-2xx ${r.result.non2xx}, errors ${r.result.errors}]` +
      (r.cpu === undefined ? "" : `  server CPU ${r.cpu.toFixed(0)} µs/read`) +
      (r === withLog ? `  (${r.recorded} reads recorded in all)` : ""),
  );
}
console.log(`ratio (with / without): ${(withLog.rate / without.rate).toFixed(3)}`);
