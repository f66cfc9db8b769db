/**
 * Micro-benchmark of the log's read path (src/log/log.ts, "Reads") on the real LevelDB driver:
 * µs per entry for single reads by index, by id, pages of 100, receipts, and entry bundles read
 * from storage (uncached). Every read is checked against the tree before it is served
 * (src/log/integrity.ts); this is the script that measures what that check costs.
 *
 *   npm run bench:reads                     (100,000 entries of 200 bytes, LevelDB)
 *   npm run bench:reads -- 20000 --memory   (another size; the memory driver, no I/O at all)
 *
 * It reports CPU time per entry (all threads: process.cpuUsage), not wall time: on a shared
 * machine wall time mostly measures the other processes, CPU time what the read costs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseUuid } from "../src/core/entry.js";
import { TILE_WIDTH } from "../src/core/tiles.js";
import { Log } from "../src/log/log.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { openLevelDatabase } from "../src/storage/level.js";
import { MemoryDatabase } from "../src/storage/memory.js";
import { machine } from "./lib/bench.js";

installNodeCrypto();

const args = process.argv.slice(2);
const MEMORY = args.includes("--memory");
const SIZE = Number(args.find((a) => !a.startsWith("--")) ?? 100_000);
const ROUNDS = 5;

/** Median CPU µs per entry over ROUNDS rounds of `count` calls of `fn(i)` (after one warm-up). */
async function time(
  name: string,
  count: number,
  entriesPerCall: number,
  fn: (i: number) => Promise<unknown>,
) {
  const perEntry: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < count; i++) await fn(i);
    const used = process.cpuUsage(start);
    if (r > 0) perEntry.push((used.user + used.system) / (count * entriesPerCall));
  }
  perEntry.sort((a, b) => a - b);
  const median = perEntry[Math.floor(perEntry.length / 2)]!;
  console.log(`${name.padEnd(52)} ${median.toFixed(2).padStart(8)} µs CPU per entry`);
}

const dir = mkdtempSync(join(tmpdir(), "vellum-bench-reads-"));
try {
  const memory = new MemoryDatabase();
  const open = async () => {
    const db = MEMORY ? memory : await openLevelDatabase(join(dir, "db"));
    const log = await Log.open({
      origin: "bench.example/log",
      seed: new Uint8Array(32).fill(7),
      kv: db.namespace("log"),
      checkpointIntervalMs: 0,
    });
    return { db, log };
  };
  let { db, log } = await open();
  const payloads = Array.from({ length: SIZE }, (_, i) =>
    new TextEncoder().encode(`{"n":${i},"pad":"${"x".repeat(180)}"}`),
  );
  for (let at = 0; at < SIZE; at += 10_000) await log.submitMany(payloads.slice(at, at + 10_000));
  // Reopened, so the reads hit LevelDB tables (the write-ahead log is turned into one at open).
  await log.close();
  if (!MEMORY) await db.close();
  ({ db, log } = await open());
  console.log(
    `# Vellum read path — ${machine()}; ${MEMORY ? "memory" : "LevelDB"} log of ${log.size} entries`,
  );

  // A fixed pseudo-random order, the same on every run.
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const indices = Array.from({ length: 20_000 }, () => Math.floor(rnd() * SIZE));
  const ids = await Promise.all(indices.slice(0, 5000).map(async (i) => (await log.entry(i)).id));

  await time("entry(index), random", indices.length, 1, (i) => log.entry(indices[i]!));
  await time("entryById, random", ids.length, 1, (i) => log.entryById(parseUuid(ids[i]!)));
  await time("entries(start, 100), random pages", 2000, 100, (i) =>
    log.entries(Math.min(indices[i]!, SIZE - 100), 100),
  );
  await time("receipt(index) (leaf only, no proof)", indices.length, 1, (i) =>
    log.receipt(indices[i]!),
  );
  // Partial bundles are never cached, so width 255 reads every time from storage.
  const bundles = Math.floor(SIZE / TILE_WIDTH);
  await time("entryBundle(n, 255), uncached", 200, 255, (i) =>
    log.entryBundle(i % bundles, TILE_WIDTH - 1),
  );
  await log.close();
  await db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
