/**
 * The fault scenarios of issue 10, each run against real `vellum serve` / `vellum witness`
 * processes (bin/vellum.js over dist/: run `npm run build` first) with a real fault, then a
 * `kill -9` and a restart, then an audit from outside (scripts/lib/fault-audit.ts). Shared by the
 * CI suite (test/faults/, small sizes) and `npm run torture` (scripts/torture.ts, larger ones),
 * which differ only in the numbers they pass. Each returns a report of what happened: the answers
 * during and after the fault, whether the same process resumed, how the restart went, the audit.
 *
 * Scenarios: a tmpfs filled to ENOSPC under load (`tmpfsEnospc`); `strace -e inject=` on the
 * LevelDB write-ahead log (`straceInject`); a flipped byte in a `.ldb` or `.log` file of a stopped
 * server (`byteFlip`); an older copy of the data directory restored (`restoreBackup`); the
 * witness on a full disk, killed, restarted and offered a fork (`witnessEnospc`).
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { base64Encode, hexEncode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { foldRight } from "../../src/core/compact.js";
import { sha256 } from "../../src/core/crypto.js";
import {
  formatSignerKey,
  type NoteVerifier,
  SIG_TYPE_ED25519,
  verifierFromKey,
} from "../../src/core/keys.js";
import { type NodeId, rangeNodes } from "../../src/core/merkle.js";
import { buildProof, consistencyProofPlan } from "../../src/core/proof.js";
import { EMPTY_ROOT, hashChildren } from "../../src/core/rfc6962.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { type AuditResult, audit } from "./fault-audit.js";
import {
  findBytes,
  flipByte,
  StraceInjector,
  Tmpfs,
  tableFiles,
  walFiles,
  walPathsAhead,
} from "./fault-env.js";
import { type Ack, type Tally, Workload, waitFor } from "./fault-load.js";
import { spawnVellum, type VellumProcess } from "./vellum-process.js";

const MiB = 1024 * 1024;

/** What one scenario did and found. */
export interface ScenarioReport {
  readonly name: string;
  /** Entries acknowledged (receipt verified) before the kill, in every phase. */
  acknowledged: number;
  /** Of those, acknowledged by the same process after the fault cleared. */
  ackedAfterClear: number;
  /** Answers to submissions while the fault was on (`<status> <code>` → count). */
  faultAnswers: Tally;
  /** `/readyz` while the fault was on. */
  faultReadyz: Tally;
  /** `/readyz` after the fault cleared (same process). */
  clearedReadyz: Tally;
  /** The first few distinct details of each kind of failed answer, e.g. the 503 naming ENOSPC. */
  details: Record<string, string[]>;
  /** System calls strace failed. */
  injected: number;
  /** The same process acknowledged entries again after the fault cleared. */
  resumed: boolean;
  /** `/metrics` after the fault cleared, before the kill. */
  metrics: string;
  /** The server's output up to the kill (its log lines about the fault). */
  serverLog: string;
  restart: { ready: boolean; exitCode: number | null | undefined; output: string };
  /** The restart was refused, DATA/checkpoint deleted (retryWithoutMarker), and then it started. */
  restartedWithoutMarker?: boolean;
  /** Acknowledged by the restarted server (it must accept again, and re-signs sizes). */
  ackedAfterRestart: number;
  audit: AuditResult | undefined;
  badReceipts: string[];
  notes: string[];
}

function newReport(name: string): ScenarioReport {
  return {
    name,
    acknowledged: 0,
    ackedAfterClear: 0,
    faultAnswers: new Map(),
    faultReadyz: new Map(),
    clearedReadyz: new Map(),
    details: {},
    injected: 0,
    resumed: false,
    serverLog: "",
    metrics: "",
    restart: { ready: false, exitCode: undefined, output: "" },
    ackedAfterRestart: 0,
    audit: undefined,
    badReceipts: [],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// Servers

export interface Started {
  readonly proc: Omit<VellumProcess, "url">;
  /** Undefined if it exited (or never printed its URL). */
  readonly url: string | undefined;
  /** /readyz answered 200. */
  readonly ready: boolean;
}

/**
 * Spawns `vellum <args>` and waits (up to `ms`) for its URL and a 200 from `readyPath`. Unlike
 * startVellum it does not throw: a server that refuses to start, or starts but is not ready, is a
 * result here.
 */
export async function tryStart(
  args: string[],
  readyPath = "/readyz",
  ms = 20_000,
): Promise<Started> {
  const proc = spawnVellum(args);
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  const deadline = Date.now() + ms;
  let url: string | undefined;
  while (!exited && Date.now() < deadline) {
    url ??= /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.stdout())?.[1];
    if (url !== undefined) {
      const res = await fetch(`${url}${readyPath}`).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status === 200) return { proc, url, ready: true };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, url: exited ? undefined : url, ready: false };
}

async function startOrThrow(
  args: string[],
  readyPath = "/readyz",
): Promise<Started & { url: string }> {
  const s = await tryStart(args, readyPath);
  if (!s.ready || s.url === undefined) {
    await s.proc.kill();
    throw new Error(`vellum ${args.join(" ")} did not start:\n${s.proc.output()}`);
  }
  return s as Started & { url: string };
}

interface LogDir {
  readonly data: string;
  token(): string;
  logKey(): NoteVerifier;
}

function logDir(data: string): LogDir {
  return {
    data,
    token: () => readFileSync(join(data, "admin.token"), "utf8").trim(),
    logKey: () => verifierFromKey(readFileSync(join(data, "log.vkey"), "utf8").trim()),
  };
}

const serveArgs = (data: string, extra: readonly string[] = []) => [
  "serve",
  ...["--data", data, "--port", "0", "--host", "127.0.0.1"],
  ...extra,
];

// ---------------------------------------------------------------------------------------------
// The common second half: kill -9, restart, accept more, audit

export interface AfterOptions {
  /** If the restart is refused for DATA/checkpoint, delete it and restart (torture only). */
  readonly retryWithoutMarker?: boolean;
  /** Wait this long at most for the restarted server to be ready. */
  readonly restartMs?: number;
  /** Submit after the restart until the log passes the largest acknowledged size, or this long. */
  readonly growMs?: number;
  readonly concurrency?: number;
}

/**
 * Restarts the server on `dir` (extra serve args `extra`), has it accept entries until its tree
 * passes every size a receipt named (so a log that lost entries re-signs those sizes), and
 * audits every acknowledgement of `acked`.
 */
export async function restartAndAudit(
  r: ScenarioReport,
  dir: LogDir,
  acked: Map<number, Ack>,
  o: AfterOptions & { extra?: readonly string[] } = {},
): Promise<void> {
  let s = await tryStart(serveArgs(dir.data, o.extra), "/readyz", o.restartMs ?? 20_000);
  try {
    const exit = s.url === undefined ? await s.proc.exited : undefined;
    r.restart = { ready: s.ready, exitCode: exit?.code, output: s.proc.output().slice(-3000) };
    if (s.url === undefined && o.retryWithoutMarker && /DATA\/checkpoint/.test(r.restart.output)) {
      // What an operator does with a log that refuses to start because of its rollback marker:
      // delete DATA/checkpoint. (The "before" numbers: what the log then serves and signs.)
      rmSync(join(dir.data, "checkpoint"), { force: true });
      s = await tryStart(serveArgs(dir.data, o.extra), "/readyz", o.restartMs ?? 20_000);
      r.restartedWithoutMarker = s.ready;
    }
    if (s.url === undefined) return;
    let maxSize = 0;
    for (const a of acked.values()) maxSize = Math.max(maxSize, a.size);
    const w = new Workload({
      url: s.url,
      token: dir.token(),
      logKey: dir.logKey(),
      tag: "restarted",
      payloadBytes: [50, 200],
    });
    w.phase = "restarted";
    if (s.ready) {
      w.start(o.concurrency ?? 16);
      await waitFor(
        () =>
          w.acks() >= 20 && Math.max(...[0, ...[...w.acked.keys()].map((i) => i + 1)]) > maxSize,
        o.growMs ?? 10_000,
      );
      await w.stop();
    } else {
      // Running but not ready: what does it answer a submission?
      for (let i = 0; i < 5; i++) await w.submitOne();
    }
    r.ackedAfterRestart = w.acks();
    r.badReceipts.push(...w.badReceipts);
    for (const [k, n] of w.answers.get("restarted") ?? []) {
      if (!k.startsWith("2"))
        r.notes.push(`after the restart: ${k}×${n}: ${w.details.get(k)?.[0]}`);
    }
    r.audit = await audit(s.url, dir.token(), dir.logKey(), [
      ...acked.values(),
      ...w.acked.values(),
    ]);
  } finally {
    await s.proc.kill();
  }
}

function absorb(r: ScenarioReport, w: Workload): void {
  r.acknowledged = w.acks();
  r.ackedAfterClear = w.acks("cleared");
  r.faultAnswers = w.answers.get("fault") ?? new Map();
  r.faultReadyz = w.readyz.get("fault") ?? new Map();
  r.clearedReadyz = w.readyz.get("cleared") ?? new Map();
  r.details = Object.fromEntries(w.details);
  r.resumed = r.ackedAfterClear > 0;
  r.badReceipts.push(...w.badReceipts);
}

// ---------------------------------------------------------------------------------------------
// (a) A small tmpfs filled to ENOSPC under load

export interface LoadFaultOptions extends AfterOptions {
  /** Acknowledgements before the fault. */
  readonly warmup?: number;
  /** Keep the fault on until this many submissions failed (or faultMs passed). */
  readonly failures?: number;
  readonly faultMs?: number;
  /** After the fault clears, wait for this many acknowledgements (or clearedMs). */
  readonly afterClear?: number;
  readonly clearedMs?: number;
}

/** Runs the load through a fault window: `on()` starts it, `off()` ends it. */
async function throughFault(
  r: ScenarioReport,
  url: string,
  w: Workload,
  o: LoadFaultOptions,
  on: () => Promise<void> | void,
  off: () => Promise<void> | void,
): Promise<void> {
  const stopSampling = w.sampleReadyz();
  w.start(o.concurrency ?? 16);
  try {
    if (!(await waitFor(() => w.acks() >= (o.warmup ?? 50), 20_000))) {
      r.notes.push(`only ${w.acks()} acknowledged before the fault`);
    }
    w.phase = "fault";
    await on();
    const started = Date.now();
    await waitFor(
      () => w.failures("fault") >= (o.failures ?? 20) && Date.now() - started > 1000,
      o.faultMs ?? 10_000,
    );
    if (w.failures("fault") === 0) r.notes.push("the fault made no submission fail");
    await off();
    w.phase = "cleared";
    await waitFor(() => w.acks("cleared") >= (o.afterClear ?? 100), o.clearedMs ?? 10_000);
    // Acknowledging again can take less than one /readyz sample: give it a few.
    const ready = () =>
      [...(w.readyz.get("cleared")?.keys() ?? [])].some((k) => k.startsWith("200"));
    if (w.acks("cleared") > 0) await waitFor(ready, 3000);
    const metrics = await fetch(`${url}/metrics`).catch(() => undefined);
    r.metrics = (await metrics?.text()) ?? "";
  } finally {
    await stopSampling();
  }
}

export async function tmpfsEnospc(
  work: string,
  o: LoadFaultOptions & { tmpfsBytes?: number } = {},
): Promise<ScenarioReport> {
  const r = newReport("tmpfs ENOSPC, space freed, kill -9");
  const fs = Tmpfs.mount(join(work, "mnt"), o.tmpfsBytes ?? 5 * MiB);
  try {
    const dir = logDir(join(fs.dir, "data"));
    const s = await startOrThrow(serveArgs(dir.data));
    const w = new Workload({ url: s.url, token: dir.token(), logKey: dir.logKey(), tag: "enospc" });
    try {
      await throughFault(
        r,
        s.url,
        w,
        o,
        () => {
          fs.fill(128 * 1024);
        },
        () => fs.clear(),
      );
    } finally {
      await s.proc.kill();
      await w.stop();
    }
    absorb(r, w);
    r.serverLog = s.proc.output();
    // The operator makes room before restarting: the restart must not fail for lack of space.
    fs.resize(64 * MiB);
    await restartAndAudit(r, dir, w.acked, o);
  } finally {
    fs.unmount();
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// (b) strace -e inject= on the write-ahead log

export async function straceInject(
  work: string,
  fault: {
    syscall: "write" | "fdatasync";
    error: "ENOSPC" | "EIO";
    /**
     * The write-ahead logs of both databases (default); DATA/entries' alone, where a batch's
     * leaves go while its own write goes to DATA/db (so the own write can land without them,
     * and the log takes that batch back out); or the rollback marker DATA/checkpoint (and its
     * temp file).
     */
    target?: "wal" | "entries-wal" | "marker";
  },
  o: LoadFaultOptions = {},
): Promise<ScenarioReport> {
  const target = fault.target ?? "wal";
  const r = newReport(
    `strace ${fault.syscall} ${fault.error} on ${target === "wal" ? "the WAL" : target === "entries-wal" ? "DATA/entries' WAL" : "DATA/checkpoint"}, kill -9`,
  );
  const dir = logDir(join(work, "data"));
  const s = await startOrThrow(serveArgs(dir.data));
  const w = new Workload({ url: s.url, token: dir.token(), logKey: dir.logKey(), tag: "strace" });
  let strace: StraceInjector | undefined;
  try {
    await throughFault(
      r,
      s.url,
      w,
      o,
      async () => {
        const pid = s.proc.child.pid!;
        const marker = join(dir.data, "checkpoint");
        const paths =
          target === "wal"
            ? // Both databases' logs: a batch's leaves go to DATA/entries, its own write to DATA/db.
              [...walPathsAhead(join(dir.data, "db")), ...walPathsAhead(join(dir.data, "entries"))]
            : target === "entries-wal"
              ? walPathsAhead(join(dir.data, "entries"))
              : [marker, `${marker}.tmp-${pid}`, `${marker}.tmp`];
        strace = await StraceInjector.attach(
          pid,
          { syscall: fault.syscall, error: fault.error, paths },
          join(work, "strace.txt"),
        );
      },
      async () => {
        await strace?.detach();
      },
    );
  } finally {
    await strace?.detach();
    await s.proc.kill();
    await w.stop();
  }
  r.injected = strace?.injected() ?? 0;
  absorb(r, w);
  r.serverLog = s.proc.output();
  await restartAndAudit(r, dir, w.acked, o);
  return r;
}

/**
 * The crash window of a batch's two writes at once, in a real process: writes to DATA/entries'
 * write-ahead log held (strace delay_enter) under load, so a batch's leaves are stuck while its
 * own write to DATA/db goes on and lands; acknowledgements stop (a batch is answered only once
 * both writes are done); then kill -9 with the leaves still held. `vellum fsck` on the killed
 * directory must call the batch unfinished, and the restart must take it back out, say so, and
 * lose nothing acknowledged.
 */
export async function heldLeavesKill(
  work: string,
  o: AfterOptions & { concurrency?: number; warmup?: number } = {},
): Promise<ScenarioReport & { fsck: string }> {
  const r = { ...newReport("writes to DATA/entries' WAL held (strace), kill -9"), fsck: "" };
  const dir = logDir(join(work, "data"));
  const s = await startOrThrow(serveArgs(dir.data));
  const w = new Workload({ url: s.url, token: dir.token(), logKey: dir.logKey(), tag: "held" });
  let strace: StraceInjector | undefined;
  try {
    w.start(o.concurrency ?? 16);
    if (!(await waitFor(() => w.acks() >= (o.warmup ?? 50), 20_000))) {
      r.notes.push(`only ${w.acks()} acknowledged before the fault`);
    }
    w.phase = "fault";
    strace = await StraceInjector.attach(
      s.proc.child.pid!,
      { syscall: "write", delayMs: 120_000, paths: walPathsAhead(join(dir.data, "entries")) },
      join(work, "strace.txt"),
    );
    // Acknowledgements stop once a batch's leaves are held: wait until none came for a second.
    let seen = w.acks();
    let since = Date.now();
    const quiet = await waitFor(() => {
      if (w.acks() !== seen) {
        seen = w.acks();
        since = Date.now();
      }
      return Date.now() - since > 1000;
    }, 15_000);
    if (!quiet) r.notes.push("acknowledgements went on while DATA/entries' writes were held");
  } finally {
    // kill -9 while the leaves are held; then strace, which would hold the killed process's
    // stopped thread (and so its exit) until the delay ran out.
    s.proc.child.kill("SIGKILL");
    await strace?.kill();
    await s.proc.exited;
    await w.stop();
  }
  r.injected = strace?.injected() ?? 0;
  absorb(r, w);
  r.serverLog = s.proc.output();
  const fsck = spawnVellum(["fsck", "--data", dir.data]);
  await fsck.exited;
  r.fsck = fsck.output();
  await restartAndAudit(r, dir, w.acked, o);
  return r;
}

// ---------------------------------------------------------------------------------------------
// (c) A flipped byte in a table or the write-ahead log of a stopped server

export async function byteFlip(
  work: string,
  target: "ldb" | "log",
  o: AfterOptions & {
    entries?: number;
    flips?: number;
    /** Called with the (stopped) server's data directory before and after the flips. */
    beforeFlip?: (data: string) => void;
    afterFlip?: (data: string) => void;
  } = {},
): Promise<ScenarioReport & { flipped: number[] }> {
  const r = {
    ...newReport(`byte flip in ${target === "ldb" ? "a .ldb table" : "the .log WAL"}`),
    flipped: [] as number[],
  };
  const dir = logDir(join(work, "data"));
  const acked = new Map<number, Ack>();
  const load = async (tag: string, n: number) => {
    const s = await startOrThrow(serveArgs(dir.data));
    const w = new Workload({ url: s.url, token: dir.token(), logKey: dir.logKey(), tag });
    w.start(o.concurrency ?? 16);
    await waitFor(() => w.acks() >= n, 30_000);
    await w.stop();
    await s.proc.stop();
    for (const [i, a] of w.acked) acked.set(i, a);
    r.badReceipts.push(...w.badReceipts);
  };
  await load("flip", o.entries ?? 300);
  // A restart turns the write-ahead log into a table (LevelDB writes the recovered memtable as a
  // level-0 table at open), so the entries are in a .ldb; for the WAL case they stay in the .log.
  if (target === "ldb") {
    const s = await startOrThrow(serveArgs(dir.data));
    await s.proc.stop();
  }
  r.acknowledged = acked.size;
  o.beforeFlip?.(dir.data);
  // The leaves are in DATA/entries (layout 3); DATA/db is searched too.
  const files = ["entries", "db"].flatMap((name) =>
    target === "ldb" ? tableFiles(join(dir.data, name)) : walFiles(join(dir.data, name)),
  );
  // Damage entries in the middle (so valid records follow a damaged WAL record): one byte inside
  // the payload's random part, found by its unique head.
  const indices = [...acked.keys()].sort((a, b) => a - b);
  const flips = o.flips ?? 1;
  for (let k = 0; k < flips; k++) {
    const middle = Math.floor(((k + 1) * indices.length) / (flips + 1));
    // The entry there, or the nearest one whose payload is stored in one piece: a WAL record
    // that crosses a 32 KiB block has a block header in the middle of its bytes.
    let done = false;
    for (let d = 0; d < 16 && !done; d++) {
      for (const at of d === 0 ? [middle] : [middle + d, middle - d]) {
        const index = indices[at];
        if (index === undefined || r.flipped.includes(index)) continue;
        const payload = acked.get(index)!.payload;
        const head = payload.subarray(0, Math.min(40, payload.length));
        const hit = files.map((f) => ({ f, at: findBytes(f, head) })).find((x) => x.at.length > 0);
        if (hit === undefined) continue;
        flipByte(hit.f, hit.at[0]! + Math.min(head.length + 20, payload.length - 1));
        r.flipped.push(index);
        done = true;
        break;
      }
    }
    if (!done) {
      r.notes.push(
        `no entry near ${indices[middle]} has its payload stored verbatim in any ${target} file`,
      );
    }
  }
  o.afterFlip?.(dir.data);
  await restartAndAudit(r, dir, acked, { ...o, growMs: o.growMs ?? 5_000 });
  return r;
}

// ---------------------------------------------------------------------------------------------
// (d) An older copy of the data directory restored

export interface RestoreOptions extends AfterOptions {
  /** "dir": the whole data directory comes back (DATA/checkpoint too, as old as the database);
   *  "db-no-marker": the database comes back and DATA/checkpoint is deleted. */
  readonly restore: "dir" | "db-no-marker";
  /** Run the log with a witness policy: one `vellum witness`, quorum 1. */
  readonly witness?: boolean;
  /** Pass `--state-mirror DIR` (a directory outside the data directory, not restored). */
  readonly stateMirror?: boolean;
  readonly before?: number;
  readonly after?: number;
}

export async function restoreBackup(work: string, o: RestoreOptions): Promise<ScenarioReport> {
  const what = [
    o.restore === "dir" ? "data dir restored" : "db restored, DATA/checkpoint deleted",
    o.witness ? "witness" : "no witness",
    ...(o.stateMirror ? ["--state-mirror"] : []),
  ];
  const r = newReport(`backup: ${what.join(", ")}`);
  const dir = logDir(join(work, "data"));
  const extra: string[] = [];
  let witness: Started | undefined;
  try {
    if (o.witness) {
      const w = await startWitnessedKey(work, "backup.fault.test/log");
      witness = w.witness;
      extra.push("--witness-policy", w.policy, "--witness-timeout-ms", "1000");
    }
    if (o.stateMirror) {
      // An existing directory on storage that is not restored with the data directory.
      mkdirSync(join(work, "mirror"), { mode: 0o700 });
      extra.push("--state-mirror", join(work, "mirror"));
    }
    const acked = new Map<number, Ack>();
    const load = async (tag: string, n: number) => {
      const s = await startOrThrow(serveArgs(dir.data, extra));
      const w = new Workload({ url: s.url, token: dir.token(), logKey: dir.logKey(), tag });
      w.start(o.concurrency ?? 16);
      if (!(await waitFor(() => w.acks() >= n, 30_000))) {
        r.notes.push(`${tag}: only ${w.acks()} acknowledged`);
      }
      await w.stop();
      await s.proc.stop();
      for (const [i, a] of w.acked) acked.set(i, a);
      r.badReceipts.push(...w.badReceipts);
    };
    await load("before-backup", o.before ?? 100);
    cpSync(dir.data, join(work, "backup"), { recursive: true });
    await load("after-backup", o.after ?? 200);
    r.acknowledged = acked.size;
    if (o.restore === "dir") {
      rmSync(dir.data, { recursive: true, force: true });
      cpSync(join(work, "backup"), dir.data, { recursive: true });
    } else {
      rmSync(join(dir.data, "db"), { recursive: true, force: true });
      cpSync(join(work, "backup", "db"), join(dir.data, "db"), { recursive: true });
      rmSync(join(dir.data, "checkpoint"), { force: true });
    }
    await restartAndAudit(r, dir, acked, { ...o, extra });
  } finally {
    await witness?.proc.stop();
  }
  return r;
}

/**
 * Makes the log's key before the log starts (so a witness can trust it) and starts one
 * `vellum witness` trusting it; returns the policy file (quorum: that witness).
 */
async function startWitnessedKey(
  work: string,
  origin: string,
): Promise<{ witness: Started; policy: string }> {
  const data = join(work, "data");
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const seed = sha256(new TextEncoder().encode(`${work} log key`));
  const signer = new CheckpointSigner(origin, seed);
  writeFileSync(
    join(data, "log.key"),
    `${formatSignerKey({ name: origin, type: SIG_TYPE_ED25519, seed })}\n`,
    {
      mode: 0o600,
    },
  );
  const witness = await startOrThrow(
    [
      "witness",
      ...["--data", join(work, "witness"), "--port", "0"],
      ...["--name", "w.fault.test/witness", "--trust", signer.verifierKey],
    ],
    "/healthz",
  );
  const wkey = readFileSync(join(work, "witness", "witness.vkey"), "utf8").trim();
  const policy = join(work, "policy.txt");
  writeFileSync(
    policy,
    [`log ${signer.verifierKey}`, `witness w ${wkey} ${witness.url}`, "quorum w", ""].join("\n"),
  );
  return { witness, policy };
}

// ---------------------------------------------------------------------------------------------
// (e) The witness: a full disk, kill -9, restart, then a fork

/** A Merkle tree over given leaf hashes, its perfect-subtree hashes memoized. */
export class HashTree {
  readonly leaves: Uint8Array[];
  readonly #memo = new Map<string, Uint8Array>();

  constructor(leaves: Uint8Array[] = []) {
    this.leaves = leaves;
  }

  node(n: NodeId): Uint8Array {
    if (n.level === 0) return this.leaves[n.index]!;
    const key = `${n.level}/${n.index}`;
    let h = this.#memo.get(key);
    if (h === undefined) {
      h = hashChildren(
        this.node({ level: n.level - 1, index: 2 * n.index }),
        this.node({ level: n.level - 1, index: 2 * n.index + 1 }),
      );
      this.#memo.set(key, h);
    }
    return h;
  }

  root(size: number): Uint8Array {
    return foldRight(rangeNodes(0, size).map((n) => this.node(n))) ?? EMPTY_ROOT;
  }

  consistency(from: number, to: number): Uint8Array[] {
    return buildProof(consistencyProofPlan(from, to), (n) => this.node(n));
  }
}

const randomLeaf = () => sha256(crypto.getRandomValues(new Uint8Array(32)));

export interface WitnessReport {
  readonly name: string;
  /** Checkpoints the witness cosigned (200) before the kill. */
  cosigned: number;
  /** The largest size it cosigned before the kill (what it must come back with, at least). */
  maxCosigned: number;
  /** Cosigned after the fault cleared, same process. */
  cosignedAfterClear: number;
  faultAnswers: Tally;
  injected: number;
  serverLog: string;
  restart: { ok: boolean; output: string };
  /** The size the restarted witness holds for the log (its /<hash>/checkpoint). */
  restartedSize: number | undefined;
  /** The restarted witness cosigned a checkpoint that contradicts one it cosigned before. */
  forkCosigned: boolean;
  forkAnswer: string;
  /** The restarted witness cosigned the honest log's next checkpoint. */
  honestAfterRestart: boolean;
  notes: string[];
}

type WitnessOptions = { warmup?: number; failures?: number; afterClear?: number; faultMs?: number };

export async function witnessEnospc(
  work: string,
  mode: "tmpfs" | "strace",
  o: WitnessOptions = {},
): Promise<WitnessReport> {
  const fs = mode === "tmpfs" ? Tmpfs.mount(join(work, "mnt"), 5 * MiB) : undefined;
  try {
    return await witnessRun(work, mode, o, fs);
  } finally {
    fs?.unmount();
  }
}

async function witnessRun(
  work: string,
  mode: "tmpfs" | "strace",
  o: WitnessOptions,
  fs: Tmpfs | undefined,
): Promise<WitnessReport> {
  const r: WitnessReport = {
    name: `witness ${mode === "tmpfs" ? "tmpfs ENOSPC" : "strace write ENOSPC"}, kill -9, fork`,
    cosigned: 0,
    maxCosigned: 0,
    cosignedAfterClear: 0,
    faultAnswers: new Map(),
    injected: 0,
    serverLog: "",
    restart: { ok: false, output: "" },
    restartedSize: undefined,
    forkCosigned: false,
    forkAnswer: "",
    honestAfterRestart: false,
    notes: [],
  };
  const origin = "witness.fault.test/log";
  const signer = new CheckpointSigner(origin, sha256(new TextEncoder().encode(work)));
  const data = join(fs?.dir ?? work, "witness");
  const args = [
    "witness",
    ...["--data", data, "--port", "0"],
    ...["--name", "w.fault.test/witness", "--trust", signer.verifierKey],
  ];
  const stateUrl = (url: string) =>
    `${url}/${hexEncode(sha256(new TextEncoder().encode(origin)))}/checkpoint`;
  const honest = new HashTree();
  let old = 0;
  let phase = "load";
  const cosignedIn = new Map<string, number>();
  const post = async (url: string, tree: HashTree, from: number, size: number) => {
    const cp = signer.sign(size, tree.root(size), Math.floor(Date.now() / 1000));
    const proof = from === 0 || from >= size ? [] : tree.consistency(from, size);
    const body = `old ${from}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${cp.note}`;
    try {
      const res = await fetch(`${url}/add-checkpoint`, {
        method: "POST",
        body,
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, text: await res.text() };
    } catch (e) {
      return { status: 0, text: (e as Error).message };
    }
  };
  /** The honest log grows by 1-4 leaves and asks the witness; returns the answer's status. */
  const step = async (url: string): Promise<number> => {
    const grow = 1 + Math.floor(Math.random() * 4);
    for (let i = 0; i < grow; i++) honest.leaves.push(randomLeaf());
    const size = honest.leaves.length;
    const a = await post(url, honest, old, size);
    if (a.status === 200) {
      old = size;
      if (phase !== "restarted") r.maxCosigned = size;
      cosignedIn.set(phase, (cosignedIn.get(phase) ?? 0) + 1);
    } else if (a.status === 409) {
      old = Number(a.text.trim()); // the size it holds: the honest log's next proof starts there
    }
    if (phase === "fault") {
      const key = a.status === 0 ? "network" : String(a.status);
      r.faultAnswers.set(key, (r.faultAnswers.get(key) ?? 0) + 1);
    }
    return a.status;
  };

  let w = await startOrThrow(args, "/healthz");
  let strace: StraceInjector | undefined;
  try {
    for (let i = 0; i < 500 && (cosignedIn.get("load") ?? 0) < (o.warmup ?? 50); i++) {
      await step(w.url);
    }
    phase = "fault";
    if (fs !== undefined) fs.fill(16 * 1024);
    else {
      strace = await StraceInjector.attach(
        w.proc.child.pid!,
        { syscall: "write", error: "ENOSPC", paths: walPathsAhead(join(data, "db")) },
        join(work, "strace.txt"),
      );
    }
    const started = Date.now();
    let failed = 0;
    while (Date.now() - started < (o.faultMs ?? 10_000)) {
      if ((await step(w.url)) !== 200) failed++;
      if (failed >= (o.failures ?? 20) && Date.now() - started > 500) break;
    }
    if (failed === 0) r.notes.push("the fault made no request fail");
    fs?.clear();
    await strace?.detach();
    phase = "cleared";
    const clearedAt = Date.now();
    while (
      (cosignedIn.get("cleared") ?? 0) < (o.afterClear ?? 50) &&
      Date.now() - clearedAt < 10_000
    ) {
      await step(w.url);
    }
  } finally {
    await strace?.detach();
    r.injected = strace?.injected() ?? 0;
    await w.proc.kill();
  }
  r.serverLog = w.proc.output();
  r.cosigned = [...cosignedIn.values()].reduce((a, b) => a + b, 0);
  r.cosignedAfterClear = cosignedIn.get("cleared") ?? 0;
  try {
    fs?.resize(64 * MiB);
    const again = await tryStart(args, "/healthz");
    r.restart = { ok: again.ready, output: again.proc.output().slice(-3000) };
    if (!again.ready || again.url === undefined) {
      await again.proc.kill();
      return r;
    }
    w = again as Started & { url: string };
    const state = await fetch(stateUrl(w.url));
    const text = await state.text();
    r.restartedSize =
      state.status === 200
        ? openCheckpoint(text, verifierFromKey(signer.verifierKey)).checkpoint.size
        : 0;
    // A fork of the largest checkpoint it cosigned before the kill: the same first leaves as far
    // as the witness now says it holds, then others; offered from the size it holds. A witness
    // that came back behind can check the proof and cosigns the fork.
    const held = r.restartedSize;
    const forkSize = r.maxCosigned;
    if (forkSize === 0) {
      r.notes.push("nothing was cosigned: no fork to offer");
      return r;
    }
    const shared = Math.min(held, forkSize - 1);
    const fork = new HashTree([
      ...honest.leaves.slice(0, shared),
      ...Array.from({ length: forkSize - shared }, randomLeaf),
    ]);
    const f = await post(w.url, fork, held, forkSize);
    r.forkAnswer = `${f.status} ${f.text.trim().slice(0, 200)}`;
    r.forkCosigned = f.status === 200;
    // The honest log goes on: its next checkpoint, from the size the witness says it holds.
    phase = "restarted";
    old = held;
    if (old > honest.leaves.length) old = honest.leaves.length;
    let status = await step(w.url);
    if (status === 409) status = await step(w.url);
    r.honestAfterRestart = status === 200;
  } finally {
    await w.proc.kill();
  }
  return r;
}
