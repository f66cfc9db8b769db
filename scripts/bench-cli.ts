/**
 * The bulk commands people run, timed end to end as processes: `vellum submit --lines` (a JSON
 * Lines audit trail in, one receipt per line out) and `vellum verify --lines` (every receipt
 * against its line), against a real `vellum serve` on 127.0.0.1 with a temporary data directory.
 * Prints the machine, the wall time of each command and its rate. Needs `npm run build`.
 *
 *   npm run bench:cli [-- --lines 30000]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatRate, machine } from "./lib/bench.js";
import { SERVER_NODE_FLAGS } from "./lib/vellum-process.js";

const BIN = fileURLToPath(new URL("../bin/vellum.js", import.meta.url));
const { values } = parseArgs({ options: { lines: { type: "string", default: "30000" } } });
const LINES = Number(values.lines);
if (!Number.isSafeInteger(LINES) || LINES < 1) throw new Error("--lines must be an integer ≥ 1");

const dir = mkdtempSync(join(tmpdir(), "vellum-bench-cli-"));
const data = join(dir, "data");
const events = join(dir, "audit.jsonl");
const receipts = join(dir, "audit.receipts.jsonl");

function timed(what: string, args: string[], env: Record<string, string>): void {
  const started = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env, NO_COLOR: "1" },
  });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  console.log(
    `${what.padEnd(34)} ${seconds.toFixed(2).padStart(6)} s  ${formatRate(LINES / seconds).padStart(8)} lines/s  (${(r.stdout || r.stderr).trim().split("\n").at(-1)})`,
  );
}

/** `vellum serve` on a free port of 127.0.0.1; resolves with its URL once it says so. */
function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, BIN, "serve", "--data", data, "--port", "0"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  process.on("exit", () => child.kill("SIGKILL"));
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    let out = "";
    child.once("exit", (code) => reject(new Error(`vellum serve exited (${code}): ${out}`)));
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const m = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ url: m[1]!, stop });
    });
  });
}

console.log(`# Vellum CLI bulk commands — ${machine()}; ${LINES} lines`);
const server = await startServer();
try {
  let text = "";
  for (let i = 0; i < LINES; i++) {
    text += `${JSON.stringify({ user: `u${i % 997}`, action: "login", at: 1_800_000_000 + i })}\n`;
  }
  writeFileSync(events, text);
  const env = { VELLUM_URL: server.url, VELLUM_DATA: data };
  timed("vellum submit --lines", ["submit", "--lines", events, "--out", receipts], env);
  timed(
    "vellum verify --lines --entry",
    ["verify", "--lines", receipts, "--entry", events, "--key", join(data, "log.vkey")],
    env,
  );
  if (readFileSync(receipts, "utf8").split("\n").length !== LINES + 1) {
    throw new Error("not one receipt per line");
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
