/**
 * Rollback protection end to end, with real `vellum` processes on 127.0.0.1: the data directory
 * is copied while the log is stopped, entries are added, the log is stopped and the old copy put
 * back. With witnesses (three, quorum 2 of 3) the log refuses to start, names the witness and the
 * sizes, and signs nothing; without witnesses, `--state-mirror` catches the same restore, and a
 * deleted DATA/checkpoint. With its witnesses unreachable at start, a log signs and accepts nothing
 * (readyz 503 "checking") until they answer.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHECKPOINT_RANGE } from "../../src/storage/kv-log-layout.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { runVellum } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { spawnVellum, startVellum, type VellumProcess } from "../helpers/processes.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-rollback-"));
const ORIGIN = "rollback.e2e.test/log";

async function until(what: string, predicate: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  // A failed poll (a process not up yet, a kept-alive connection closed under us) counts as no.
  while (!(await predicate().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function submit(log: VellumProcess, data: string, text: string) {
  const token = readFileSync(join(data, "admin.token"), "utf8").trim();
  const res = await fetch(`${log.url}/v1/entries`, {
    method: "POST",
    body: text,
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as { index: number; witnessed: boolean };
}

/** Every checkpoint note stored in DATA's database (read with the log stopped). */
async function storedCheckpoints(data: string): Promise<string[]> {
  const db = await openLevelDatabase(join(data, "db"), { createIfMissing: false });
  try {
    const rows = await db.namespace("log").range(CHECKPOINT_RANGE);
    return rows.map(([, v]) => new TextDecoder().decode(v));
  } finally {
    await db.close();
  }
}

/** Copies (or puts back) a data directory while its log is stopped. */
function copyDir(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
}

/** Runs `vellum serve` expecting it to refuse to start; its stderr. */
async function refusedStart(args: string[]): Promise<string> {
  const p = spawnVellum(["serve", "--port", "0", ...args]);
  const { code } = await p.exited;
  expect(code, p.output()).toBe(3); // STATE_MISMATCH: an inconsistency, not a usage error
  return p.stderr();
}

describe("with witnesses", () => {
  const data = join(dir, "witnessed");
  const backup = join(dir, "witnessed-backup");
  const newest = join(dir, "witnessed-newest");
  const ports: number[] = [];
  const witnesses: (VellumProcess | undefined)[] = [];
  let logKey: string;
  let policyFile: string;

  const startWitness = (i: number) =>
    startVellum([
      "witness",
      ...["--data", join(dir, `w${i}`), "--port", String(ports[i])],
      ...["--name", `w${i}.rollback.e2e.test/witness`, "--trust", logKey],
    ]);
  // A generous timeout: under load a witness that answers late is left out of the first round.
  const logArgs = ["--data", data, "--witness-policy", "", "--witness-timeout-ms", "2000"];
  const startLog = (readyPath = "/readyz", extra: string[] = []) =>
    startVellum(["serve", "--port", "0", ...logArgs, ...extra], readyPath);
  const witnessedSizes = async () =>
    Promise.all(
      ports.map(async (port) => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/witness`, {
          headers: { Connection: "close" },
        });
        const body = (await res.json()) as { logs: { origin: string; size: number | null }[] };
        return body.logs.find((l) => l.origin === ORIGIN)?.size ?? null;
      }),
    );

  beforeAll(async () => {
    mkdirSync(data, { mode: 0o700 });
    const k = runVellum(["keygen", "--name", ORIGIN, "--out", join(data, "log.key")]);
    expect(k.code, k.stderr).toBe(0);
    logKey = k.stdout.trim();
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    for (let i = 0; i < 3; i++) witnesses[i] = await startWitness(i);
    const vkeys = [0, 1, 2].map((i) =>
      readFileSync(join(dir, `w${i}`, "witness.vkey"), "utf8").trim(),
    );
    policyFile = join(dir, "policy.txt");
    writeFileSync(
      policyFile,
      [
        `log ${logKey}`,
        ...vkeys.map((v, i) => `witness w${i} ${v} http://127.0.0.1:${ports[i]}`),
        "group two-of-three 2 w0 w1 w2",
        "quorum two-of-three",
        "",
      ].join("\n"),
    );
    logArgs[3] = policyFile;
  }, 60_000);

  afterAll(async () => {
    for (const w of witnesses) await w?.stop();
  });

  it("a fresh log starts normally once its witnesses confirm", { timeout: 60_000 }, async () => {
    const log = await startLog();
    try {
      expect(log.stdout()).toMatch(/rollback check passed: witnesses .* confirmed/);
      for (let i = 0; i < 3; i++)
        expect((await submit(log, data, `entry ${i}`)).witnessed).toBe(true);
    } finally {
      expect((await log.stop()).code).toBe(0);
    }
    expect(await witnessedSizes()).toEqual([3, 3, 3]);
  });

  it("refuses a restored older copy of DATA, names the witness and sizes, signs nothing", {
    timeout: 60_000,
  }, async () => {
    copyDir(data, backup); // a backup at size 3, taken while the log is stopped
    const log = await startLog();
    try {
      for (let i = 3; i < 8; i++)
        expect((await submit(log, data, `entry ${i}`)).witnessed).toBe(true);
    } finally {
      await log.stop();
    }
    expect(await witnessedSizes()).toEqual([8, 8, 8]);
    copyDir(data, newest);
    copyDir(backup, data); // the old backup is put back
    const before = await storedCheckpoints(data);

    const stderr = await refusedStart(logArgs);
    expect(stderr).toMatch(
      /storage is behind what this log's witnesses cosigned: witness w[012] \(http:\/\/127\.0\.0\.1:\d+\) cosigned size 8 for "rollback\.e2e\.test\/log", but storage holds only 3 entries/,
    );
    expect(stderr).toMatch(/a new checkpoint would give sizes 4…8 a second root/);
    expect(stderr).toMatch(/restore a newer backup that holds at least size 8/);
    expect(stderr).toMatch(/start a new log with a new origin/);
    // No new signed root anywhere: the stored checkpoints are those of the backup, and the
    // witnesses still hold size 8 with no conflicting checkpoint offered to them.
    expect(await storedCheckpoints(data)).toEqual(before);
    expect(await witnessedSizes()).toEqual([8, 8, 8]);
    for (const port of ports) {
      const { evidence } = (await (await fetch(`http://127.0.0.1:${port}/v1/evidence`)).json()) as {
        evidence: unknown[];
      };
      expect(evidence).toEqual([]);
    }

    // What the message suggests: the newer backup starts.
    copyDir(newest, data);
    const again = await startLog();
    expect((await submit(again, data, "entry 8")).index).toBe(8);
    await again.stop();
  });

  it("with its witnesses unreachable at start, signs and accepts nothing until they answer", {
    timeout: 90_000,
  }, async () => {
    for (let i = 0; i < 3; i++) {
      await witnesses[i]!.stop();
      witnesses[i] = undefined;
    }
    // --checkpoint-interval 1: an open idle log would re-sign its checkpoint every second.
    const log = await startLog("/healthz", ["--checkpoint-interval", "1"]);
    try {
      const ready = await fetch(`${log.url}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { status: string; reason: string };
      expect(body.status).toBe("checking");
      expect(body.reason).toMatch(/signing nothing until witnesses meeting the quorum/);
      expect(body.reason).toMatch(/w0: fetch failed \(ECONNREFUSED\)/);
      const token = readFileSync(join(data, "admin.token"), "utf8").trim();
      const refused = await fetch(`${log.url}/v1/entries`, {
        method: "POST",
        body: "while checking",
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/the log is starting/);
      const info = async () =>
        (await (await fetch(`${log.url}/v1/log`)).json()) as {
          checkpoint: string;
          status: string;
        };
      const first = await info();
      expect(first.status).toBe("checking");
      // Three rounds of questions (about 3 s, several re-sign intervals): still nothing signed.
      await until(
        "three rounds",
        async () => (log.stderr().match(/asking again in/g) ?? []).length >= 3,
      );
      expect((await info()).checkpoint).toBe(first.checkpoint);

      for (let i = 0; i < 3; i++) witnesses[i] = await startWitness(i);
      await until("ready", async () => (await fetch(`${log.url}/readyz`)).status === 200);
      expect(log.stdout()).toMatch(/rollback check passed/);
      expect((await submit(log, data, "after the witnesses came back")).witnessed).toBe(true);
      await until("every witness at 10", async () =>
        (await witnessedSizes()).every((n) => n === 10),
      );
    } finally {
      await log.stop();
    }
  });

  it("a witness that answers late and proves the storage behind stops the log (exit 3)", {
    timeout: 60_000,
  }, async () => {
    for (let i = 0; i < 3; i++) {
      await witnesses[i]!.stop();
      witnesses[i] = undefined;
    }
    copyDir(data, newest);
    copyDir(backup, data); // size 3; the witnesses cosigned 10
    const log = await startLog("/healthz");
    expect((await (await fetch(`${log.url}/readyz`)).json()) as object).toMatchObject({
      status: "checking",
    });
    witnesses[1] = await startWitness(1);
    const { code } = await log.exited;
    expect(code, log.output()).toBe(3);
    expect(log.stderr()).toMatch(/witness w1 .* cosigned size 10 .* storage holds only 3 entries/);
    expect(await storedCheckpoints(data)).toEqual(await storedCheckpoints(backup));
    for (const i of [0, 2]) witnesses[i] = await startWitness(i);
    copyDir(newest, data);
  });
});

describe("without witnesses, with --state-mirror", () => {
  const data = join(dir, "mirrored");
  const mirror = join(dir, "mirror");
  const backup = join(dir, "mirrored-backup");
  const newest = join(dir, "mirrored-newest");
  const args = ["--data", data, "--state-mirror", mirror];
  const startLog = () => startVellum(["serve", "--port", "0", ...args], "/readyz");

  it("refuses a restored older copy of DATA (which the data directory alone would not)", {
    timeout: 60_000,
  }, async () => {
    mkdirSync(mirror);
    let log = await startLog();
    for (let i = 0; i < 3; i++) await submit(log, data, `entry ${i}`);
    await log.stop();
    copyDir(data, backup);
    log = await startLog();
    for (let i = 3; i < 7; i++) await submit(log, data, `entry ${i}`);
    await log.stop();
    copyDir(data, newest);
    copyDir(backup, data);
    const before = await storedCheckpoints(data);

    const stderr = await refusedStart(args);
    expect(stderr).toMatch(
      new RegExp(
        `the last published checkpoint \\(the state mirror ${join(mirror, "checkpoint")}\\) has size 7 but storage holds only 3 entries`,
      ),
    );
    expect(await storedCheckpoints(data)).toEqual(before);

    // The weaker case the README warns of: without the mirror, the restored copy's own
    // DATA/checkpoint agrees with it, and the same restore starts silently.
    const unguarded = join(dir, "unguarded");
    copyDir(data, unguarded);
    const silent = await startVellum(["serve", "--port", "0", "--data", unguarded], "/readyz");
    await silent.stop();
    // Adding a mirror to an existing log: it is written at start, before any new entry.
    const later = join(dir, "later-mirror");
    mkdirSync(later);
    const guarded = await startVellum(
      ["serve", "--port", "0", "--data", unguarded, "--state-mirror", later],
      "/readyz",
    );
    expect(guarded.stdout()).toMatch(/later-mirror\/checkpoint does not exist yet/);
    await until("the new mirror written", async () => existsSync(join(later, "checkpoint")));
    await guarded.stop();
    expect(readFileSync(join(later, "checkpoint"), "utf8")).toBe(
      readFileSync(join(unguarded, "checkpoint"), "utf8"),
    );
  });

  it("refuses a deleted DATA/checkpoint while the mirror holds one", {
    timeout: 60_000,
  }, async () => {
    copyDir(newest, data);
    rmSync(join(data, "checkpoint"));
    const stderr = await refusedStart(args);
    expect(stderr).toMatch(
      /checkpoint is missing, but the state mirror .* holds a checkpoint of size 7: the data directory was replaced/,
    );
    expect(existsSync(join(data, "checkpoint"))).toBe(false);
    // The remedy the message gives when only the file was lost: the tree is checked against it.
    cpSync(join(mirror, "checkpoint"), join(data, "checkpoint"));
    const log = await startLog();
    expect((await submit(log, data, "entry 7")).index).toBe(7);
    await log.stop();
  });
});
