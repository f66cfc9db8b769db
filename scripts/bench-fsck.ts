/**
 * How fast `vellum fsck` checks a LevelDB log, and that its memory stays flat: builds a log of N
 * entries (200-byte payloads) in a temporary directory, reopens it, runs the check
 * (src/log/fsck.ts) and prints entries per second and the process's RSS before and during the
 * check (sampled at every progress call): the check should add nothing that grows with N.
 *
 *   npm run bench:fsck                  (200,000 entries)
 *   npm run bench:fsck -- 1000000
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { databasePaths, openEmbeddedDatabases } from "../src/cli/embedded-db.js";
import { fsck } from "../src/log/fsck.js";
import { Log } from "../src/log/log.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { machine } from "./lib/bench.js";

installNodeCrypto();

const SIZE = Number(process.argv[2] ?? 200_000);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

const dir = mkdtempSync(join(tmpdir(), "vellum-bench-fsck-"));
try {
  // The data directory's two databases, as the server opens them (leaves in DATA/entries).
  const paths = databasePaths(dir);
  let db = await openEmbeddedDatabases(paths);
  const log = await Log.open({
    origin: "bench.example/log",
    seed: new Uint8Array(32).fill(7),
    ...db.place("log"),
    checkpointIntervalMs: 0,
  });
  const pad = "x".repeat(180);
  for (let at = 0; at < SIZE; at += 10_000) {
    const n = Math.min(10_000, SIZE - at);
    await log.submitMany(
      Array.from({ length: n }, (_, i) => new TextEncoder().encode(`{"n":${at + i},"p":"${pad}"}`)),
    );
  }
  const verifierKey = log.signer.verifierKey;
  await log.close();
  await db.close();
  db = await openEmbeddedDatabases(paths);
  // What building the log left behind is garbage now; the check starts from a collected heap.
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssDuring = rssBefore;
  const start = performance.now();
  const report = await fsck({
    ...db.place("log"),
    verifierKey,
    onProgress: () => {
      rssDuring = Math.max(rssDuring, process.memoryUsage().rss);
    },
  });
  const seconds = (performance.now() - start) / 1000;
  await db.close();
  console.log(`# vellum fsck — ${machine()}`);
  console.log(
    `${report.entries} entries, ${report.nodes} nodes, ${report.tiles} tiles, ${report.checkpoints} checkpoints: ${report.clean ? "clean" : `${report.problemCount} problems`}`,
  );
  console.log(
    `${seconds.toFixed(1)} s, ${Math.round(report.entries / seconds)} entries/s; RSS ${mib(rssBefore)} before the check, at most ${mib(rssDuring)} during it`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
