/**
 * The long fault run of issue 10 ("Trust under faults"): every scenario of the fault suite
 * (scripts/lib/fault-scenarios.ts) with larger numbers, against the real `vellum serve` and
 * `vellum witness` (bin/vellum.js over dist/), with real faults: a 5 MiB tmpfs filled to ENOSPC,
 * `strace -e inject=` on LevelDB's write-ahead log, flipped bytes in `.ldb` and `.log` files, an
 * older copy of the data directory restored. Needs root and strace (Debian: apt-get install
 * strace); scenarios whose tools are missing are reported as skipped.
 *
 *   npm run torture -- [--only SUBSTRING] [--dir D] [--keep] [--seconds S]
 *
 * Prints one table: scenario → acknowledged, lost, double-signed sizes, unverified served, and
 * what the server answered while the fault was on. It does not judge: test/faults/ asserts.
 * Bounded: each scenario bounds its own phases (seconds each), the whole run stops after
 * --seconds (default 600) and exits 2 if it overran.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { installNodeCrypto } from "../src/platform/node-crypto.js";
import { missingTools, type Tool } from "./lib/fault-env.js";
import { formatTally } from "./lib/fault-load.js";
import {
  byteFlip,
  heldLeavesKill,
  restoreBackup,
  type ScenarioReport,
  straceInject,
  tmpfsEnospc,
  type WitnessReport,
  witnessEnospc,
} from "./lib/fault-scenarios.js";
import { killAllVellum } from "./lib/vellum-process.js";

installNodeCrypto();

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    dir: { type: "string", default: tmpdir() },
    keep: { type: "boolean", default: false },
    seconds: { type: "string", default: "600" },
  },
});

/** The "before" numbers: a start refused over DATA/checkpoint is retried without it. */
const RETRY = { retryWithoutMarker: true } as const;

type Run = (work: string) => Promise<ScenarioReport | WitnessReport>;
const scenarios: { name: string; tools: Tool[]; run: Run }[] = [
  {
    name: "tmpfs-enospc",
    tools: ["tmpfs"],
    run: (w) =>
      tmpfsEnospc(w, { ...RETRY, warmup: 100, failures: 50, afterClear: 300, clearedMs: 15_000 }),
  },
  {
    name: "strace-write-enospc",
    tools: ["strace"],
    run: (w) =>
      straceInject(
        w,
        { syscall: "write", error: "ENOSPC" },
        { ...RETRY, warmup: 200, failures: 100, afterClear: 1000, clearedMs: 15_000 },
      ),
  },
  {
    name: "strace-fdatasync-eio",
    tools: ["strace"],
    run: (w) =>
      straceInject(
        w,
        { syscall: "fdatasync", error: "EIO" },
        { ...RETRY, warmup: 200, failures: 100, afterClear: 1000, clearedMs: 15_000 },
      ),
  },
  {
    name: "strace-marker-enospc",
    tools: ["strace"],
    run: (w) =>
      straceInject(
        w,
        { syscall: "write", error: "ENOSPC", target: "marker" },
        {
          ...RETRY,
          warmup: 200,
          failures: 100,
          afterClear: 1000,
          clearedMs: 15_000,
          faultMs: 5_000,
        },
      ),
  },
  {
    name: "strace-entries-wal-enospc",
    tools: ["strace"],
    // DATA/entries' write-ahead log alone: a batch's own write may land without its leaves,
    // and must be taken back out (the server says so) with nothing acknowledged lost.
    run: (w) =>
      straceInject(
        w,
        { syscall: "write", error: "ENOSPC", target: "entries-wal" },
        { ...RETRY, warmup: 200, failures: 100, afterClear: 1000, clearedMs: 15_000 },
      ),
  },
  {
    name: "strace-entries-held-kill",
    tools: ["strace"],
    // The crash window of a batch's two writes: its leaves held, its own write landed, kill -9.
    run: (w) => heldLeavesKill(w, { ...RETRY, warmup: 200 }),
  },
  {
    name: "flip-ldb",
    tools: [],
    run: (w) => byteFlip(w, "ldb", { ...RETRY, entries: 1000, flips: 3 }),
  },
  {
    name: "flip-log",
    tools: [],
    run: (w) => byteFlip(w, "log", { ...RETRY, entries: 1000, flips: 1 }),
  },
  {
    name: "backup-dir",
    tools: [],
    run: (w) => restoreBackup(w, { restore: "dir", before: 300, after: 600 }),
  },
  {
    name: "backup-db-no-marker",
    tools: [],
    run: (w) => restoreBackup(w, { restore: "db-no-marker", before: 300, after: 600 }),
  },
  {
    name: "backup-dir-witness",
    tools: [],
    run: (w) => restoreBackup(w, { restore: "dir", witness: true, before: 300, after: 600 }),
  },
  {
    name: "backup-dir-state-mirror",
    tools: [],
    run: (w) => restoreBackup(w, { restore: "dir", stateMirror: true, before: 300, after: 600 }),
  },
  {
    name: "witness-tmpfs-enospc",
    tools: ["tmpfs"],
    run: (w) => witnessEnospc(w, "tmpfs", { warmup: 200, failures: 50, afterClear: 100 }),
  },
  {
    name: "witness-strace-enospc",
    tools: ["strace"],
    run: (w) => witnessEnospc(w, "strace", { warmup: 200, failures: 50, afterClear: 100 }),
  },
];

const isWitness = (r: ScenarioReport | WitnessReport): r is WitnessReport => "cosigned" in r;

function restartText(r: ScenarioReport): string {
  if (r.restart.ready) return "ready";
  if (r.restartedWithoutMarker !== undefined) {
    return `refused; after rm DATA/checkpoint: ${r.restartedWithoutMarker ? "ready" : "refused"}`;
  }
  if (r.restart.exitCode !== undefined) {
    const m = /(STATE_MISMATCH|STORAGE_FAILURE|CORRUPTION|ROLLBACK|LOCKED|error)[^\n]{0,80}/.exec(
      r.restart.output,
    );
    return `refused (exit ${r.restart.exitCode}${m ? `: ${m[0]}` : ""})`;
  }
  return "running, not ready";
}

function row(r: ScenarioReport | WitnessReport): string[] {
  if (isWitness(r)) {
    const behind = r.restartedSize === undefined ? "n/a" : r.maxCosigned - r.restartedSize;
    return [
      r.name,
      `${r.cosigned} cosigned (max size ${r.maxCosigned})`,
      `${r.cosignedAfterClear}`,
      r.restart.ok ? `ready at size ${r.restartedSize}` : "refused",
      `${behind} sizes behind`,
      r.forkCosigned ? `1 (a fork of size ${r.maxCosigned} cosigned)` : "0 (fork refused)",
      formatTally(r.faultAnswers),
      "-",
      "-",
    ];
  }
  const a = r.audit;
  return [
    r.name,
    `${r.acknowledged}${r.ackedAfterRestart ? ` + ${r.ackedAfterRestart} after restart` : ""}`,
    `${r.ackedAfterClear}`,
    restartText(r),
    a === undefined ? "n/a" : `${a.lost}${a.integrity ? ` (+${a.integrity} 500 INTEGRITY)` : ""}`,
    a === undefined
      ? "n/a"
      : `${a.doubleSigned} (forked receipts ${a.forked}, behind ${a.behind}, unprovable ${a.unprovable})`,
    formatTally(r.faultAnswers),
    formatTally(r.faultReadyz),
    a === undefined ? "n/a" : String(a.unverifiedServed),
  ];
}

function printTable(rows: string[][]): void {
  const head = [
    "scenario",
    "acknowledged",
    "acked after fault cleared",
    "restart",
    "lost",
    "double-signed sizes",
    "answers during fault",
    "/readyz during fault",
    "unverified served",
  ];
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
}

async function main(): Promise<number> {
  const budget = Number(values.seconds) * 1000;
  const started = Date.now();
  const guard = setTimeout(() => {
    console.error(`torture: still running after ${values.seconds} s + 120 s; stopping`);
    killAllVellum();
    process.exit(2);
  }, budget + 120_000);
  guard.unref();
  const rows: string[][] = [];
  for (const s of scenarios) {
    if (values.only !== undefined && !s.name.includes(values.only)) continue;
    if (Date.now() - started > budget) {
      rows.push([s.name, "skipped: out of time"]);
      continue;
    }
    const missing = missingTools(s.tools);
    if (missing.length > 0) {
      rows.push([s.name, `skipped: ${missing.join("; ")}`]);
      continue;
    }
    const work = mkdtempSync(join(values.dir, `vellum-torture-${s.name}-`));
    const t0 = Date.now();
    try {
      const r = await s.run(work);
      rows.push(row(r));
      console.log(`\n## ${s.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      printDetails(r);
    } catch (e) {
      const lines = (e as Error).message.trim().split("\n");
      rows.push([s.name, `ERROR: ${lines.find((l) => /error/i.test(l)) ?? lines[0]}`]);
      console.log(`\n## ${s.name}: ERROR\n${(e as Error).stack}`);
    } finally {
      killAllVellum();
      if (values.keep) console.log(`kept ${work}`);
      else rmSync(work, { recursive: true, force: true });
    }
  }
  console.log("");
  printTable(rows);
  console.log(`\ntorture: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return 0;
}

function printDetails(r: ScenarioReport | WitnessReport): void {
  const out: string[] = [];
  if (isWitness(r)) {
    out.push(
      `cosigned ${r.cosigned} (max size ${r.maxCosigned}), ${r.cosignedAfterClear} after the fault cleared; injected ${r.injected}`,
      `during the fault: ${formatTally(r.faultAnswers)}`,
      `restart: ${r.restart.ok ? `size ${r.restartedSize}` : `refused:\n${r.restart.output}`}`,
      `fork at size ${r.maxCosigned}: ${r.forkAnswer}`,
      `honest log's next checkpoint after the restart cosigned: ${r.honestAfterRestart}`,
    );
  } else {
    out.push(
      `acknowledged ${r.acknowledged} (after the fault cleared, same process: ${r.ackedAfterClear}); after restart ${r.ackedAfterRestart}; injected ${r.injected}`,
      `during the fault: ${formatTally(r.faultAnswers)}; /readyz: ${formatTally(r.faultReadyz)}; after: ${formatTally(r.clearedReadyz)}`,
      ...Object.entries(r.details).flatMap(([k, ds]) =>
        ds.map((d) => `  ${k}: ${d.slice(0, 200)}`),
      ),
      `restart: ${restartText(r)}`,
    );
    if (!r.restart.ready) out.push(r.restart.output.trim().split("\n").slice(-6).join("\n"));
    if (r.audit !== undefined) {
      const a = r.audit;
      out.push(
        `audit: size ${a.size}, acknowledged ${a.acknowledged}, lost ${a.lost}, integrity 500 ${a.integrity}, unverified served ${a.unverifiedServed}, double-signed sizes ${a.doubleSigned}, forked receipts ${a.forked}, behind ${a.behind}, unprovable ${a.unprovable}`,
        ...a.notes.map((n) => `  ${n}`),
      );
    }
    const logLines = r.serverLog
      .split("\n")
      .filter((l) => /ENOSPC|EIO|storage|fail/i.test(l))
      .slice(0, 4);
    if (logLines.length > 0)
      out.push("server log:", ...logLines.map((l) => `  ${l.slice(0, 200)}`));
    for (const n of [...r.notes, ...r.badReceipts]) out.push(`note: ${n}`);
  }
  console.log(out.join("\n"));
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`torture: ERROR: ${e instanceof Error ? (e.stack ?? e.message) : e}`);
    killAllVellum();
    process.exit(2);
  },
);
