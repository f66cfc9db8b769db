/**
 * How fast `vellum migrate` moves a log made before layout 3 (src/storage/kv-log-migrate.ts):
 * builds a layout-2 log of N entries (200-byte payloads) in a temporary data directory (DATA/db
 * alone, as servers made them before DATA/entries), then, in the same run:
 *   bare copy   the same leaves read in the same chunks and written to another database, one
 *               synced write per chunk, nothing deleted: the least a move can do (the baseline);
 *   migrate     the real thing: copy, delete from DATA/db, check, switch the layout;
 * and prints entries per second for each and their ratio, `vellum fsck`'s verdict on the result
 * (clean, every leaf re-hashed from DATA/entries), and the two databases' sizes before and after.
 *
 *   npm run bench:migrate                  (200,000 entries)
 *   npm run bench:migrate -- 1000000
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { databaseBytes, databasePaths, openEmbeddedDatabases } from "../src/cli/embedded-db.js";
import { fsck } from "../src/log/fsck.js";
import { Log } from "../src/log/log.js";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { entryRange } from "../src/storage/kv-log-layout.js";
import { migrateToEntriesStore } from "../src/storage/kv-log-migrate.js";
import { openLevelDatabase } from "../src/storage/level.js";
import { formatRate, machine } from "./lib/bench.js";

installNodeCrypto();

const SIZE = Number((process.argv[2] ?? "200000").replaceAll("_", ""));
if (!Number.isSafeInteger(SIZE) || SIZE < 1) throw new Error("the entry count must be ≥ 1");
const CHUNK = 4096;
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;

const dir = mkdtempSync(join(tmpdir(), "vellum-bench-migrate-"));
try {
  const paths = databasePaths(dir);
  // A layout-2 log: DATA/db alone, no entries store given.
  const db = await openLevelDatabase(paths.dbPath);
  const log = await Log.open({
    origin: "bench.example/log",
    seed: new Uint8Array(32).fill(7),
    kv: db.namespace("log"),
    checkpointIntervalMs: 0,
  });
  const pad = "x".repeat(180);
  const built = performance.now();
  for (let at = 0; at < SIZE; at += 10_000) {
    const n = Math.min(10_000, SIZE - at);
    await log.submitMany(
      Array.from({ length: n }, (_, i) => new TextEncoder().encode(`{"n":${at + i},"p":"${pad}"}`)),
    );
  }
  const buildSeconds = (performance.now() - built) / 1000;
  const verifierKey = log.signer.verifierKey;
  await log.close();

  // The baseline: the same reads and synced writes of the leaves, into a scratch database.
  const scratch = await openLevelDatabase(join(dir, "scratch"));
  const to = scratch.namespace("log");
  const from = db.namespace("log");
  const bareStart = performance.now();
  let copied = 0;
  let gte = entryRange(0, Number.MAX_SAFE_INTEGER).gte;
  const { lt } = entryRange(0, Number.MAX_SAFE_INTEGER);
  for (;;) {
    const rows = await from.range({ gte, lt, limit: CHUNK });
    if (rows.length === 0) break;
    await to.write(rows.map(([key, value]) => ({ type: "put" as const, key, value })));
    copied += rows.length;
    const last = rows[rows.length - 1]![0];
    gte = new Uint8Array(last.length + 1);
    gte.set(last);
  }
  const bareSeconds = (performance.now() - bareStart) / 1000;
  await scratch.close();
  await db.close();

  // The migration, as `vellum migrate` runs it.
  const dbBefore = databaseBytes(paths.dbPath);
  const dbs = await openEmbeddedDatabases(paths, { createIfMissing: false, createEntries: true });
  const place = dbs.place("log");
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const report = await migrateToEntriesStore(place.kv, place.entries!);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const check = await fsck({ ...place, verifierKey });
  await dbs.close();
  const dbAfter = databaseBytes(paths.dbPath);
  const entriesAfter = databaseBytes(paths.entriesPath);

  const rate = SIZE / seconds;
  const bareRate = copied / bareSeconds;
  console.log(`# vellum migrate (layout 2 → 3) — ${machine()}`);
  console.log(
    `built a layout-2 log of ${SIZE.toLocaleString("en-US")} entries (200-byte payloads) in ${buildSeconds.toFixed(1)} s`,
  );
  console.log(
    `bare copy of the leaves (read, synced write, ${CHUNK} a write)   ${formatRate(bareRate)} entries/s  (${bareSeconds.toFixed(2)} s)`,
  );
  console.log(
    `migrate (copy, delete, check, switch)                 ${formatRate(rate)} entries/s  (${seconds.toFixed(2)} s; process CPU ${((cpu.user + cpu.system) / SIZE).toFixed(1)} µs per entry)  = ${((100 * rate) / bareRate).toFixed(0)}% of the bare copy`,
  );
  console.log(
    `moved ${report?.leavesMoved.toLocaleString("en-US")} leaves; fsck after: ${check.clean ? "clean" : `${check.problemCount} problems`}, ${check.entries.toLocaleString("en-US")} leaves re-hashed from DATA/entries`,
  );
  console.log(
    `DATA/db ${mib(dbBefore)} before, ${mib(dbAfter)} after (the leaves' range compacted); DATA/entries ${mib(entriesAfter)}`,
  );
  if (!check.clean || report?.leavesMoved !== SIZE) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
