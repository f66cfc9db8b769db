/**
 * The start-up rollback check (src/log/rollback-check.ts) against real witness HTTP servers on
 * 127.0.0.1 (memory storage behind them), quorum 2 of 3: a log whose storage is behind what a
 * witness cosigned refuses to open and signs nothing; one whose witnesses cannot be reached
 * opens `checking`, signs and accepts nothing, and starts once they answer.
 */
import { describe, expect, it } from "vitest";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import type { LogConfig } from "../../src/log/log.js";
import type { RollbackCheckStatus } from "../../src/log/rollback-check.js";
import { WitnessCollector } from "../../src/log/witnessing.js";
import { checkpointKey } from "../../src/storage/kv-log-layout.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { serveWitness } from "../helpers/witness.js";
import { ORIGIN, openMemoryLog, payloadOf } from "./helpers.js";

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("the log started");
}

/** Three witnesses trusting the test log's key, and a way to open the log with them. */
async function setUp(tag: string) {
  const probe = await openMemoryLog();
  const logVkey = probe.log.signer.verifierKey;
  await probe.log.close();
  const witnesses = await Promise.all([1, 2, 3].map((n) => serveWitness(n, logVkey, tag)));
  const policy = parsePolicy(
    formatPolicy({
      logs: [{ vkey: logVkey }],
      witnesses: witnesses.map((w) => ({ name: w.name, vkey: w.vkey, url: w.url })),
      groups: [{ name: "two-of-three", threshold: 2, members: ["w1", "w2", "w3"] }],
      quorum: "two-of-three",
    }),
  );
  const open = (db?: MemoryDatabase, config: Partial<LogConfig> = {}) =>
    openMemoryLog(db, {
      // Generous: a witness slower than this under load would be left out of a round.
      witnesses: new WitnessCollector(policy, { timeoutMs: 2000 }),
      receiptWaitMs: 2000,
      witnessRetryMs: 100,
      ...config,
    });
  /** What each witness last cosigned for the log (size), in order. */
  const witnessed = async () =>
    Promise.all(witnesses.map(async (w) => (await w.witness.latest(ORIGIN))?.size ?? null));
  return { witnesses, policy, open, witnessed };
}

/** Every stored checkpoint note of the log in `db`, by size. */
async function storedCheckpoints(db: MemoryDatabase): Promise<Map<number, string>> {
  const kv = MemoryDatabase.fromSnapshot(db.snapshot()).namespace("log");
  const out = new Map<number, string>();
  for (let size = 0; size <= 64; size++) {
    const note = await kv.get(checkpointKey(size));
    if (note !== undefined) out.set(size, new TextDecoder().decode(note));
  }
  return out;
}

async function until(what: string, predicate: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("rollback check at start", () => {
  it("a fresh log passes at once, and a restart of an intact log too", async () => {
    const { open, witnessed } = await setUp("fresh");
    const rounds: RollbackCheckStatus[] = [];
    const { log, db } = await open(undefined, { onStartCheck: (s) => rounds.push(s) });
    expect(log.status).toBe("open");
    expect(rounds.map((r) => r.state)).toEqual(["passed"]);
    const r = await log.submit(payloadOf(1));
    expect(r.witnessed).toBe(true);
    await log.close();
    const again = await open(db.simulateRestart());
    expect(again.log.status).toBe("open");
    expect(again.log.startCheck?.state).toBe("passed");
    expect(await witnessed()).toEqual([1, 1, 1]);
    await again.log.close();
  });

  it("passes when witnesses lag the storage (a size signed but not witnessed), advancing them", async () => {
    const { open, witnesses, witnessed } = await setUp("lagging");
    const { log, db } = await open(undefined, { receiptWaitMs: 200 });
    expect((await log.submit(payloadOf(1))).witnessed).toBe(true);
    await witnesses[0]!.stop();
    await witnesses[1]!.stop();
    expect((await log.submit(payloadOf(2))).witnessed).toBe(false);
    await log.close();
    await witnesses[0]!.restart();
    await witnesses[1]!.restart();
    const before = await witnessed();
    expect(before.slice(0, 2)).toEqual([1, 1]);
    const again = await open(db.simulateRestart());
    expect(again.log.status).toBe("open");
    // The witnesses at 1 were sent the proof from 1 to 2 and cosigned size 2.
    expect((await witnessed()).slice(0, 2)).toEqual([2, 2]);
    expect(again.log.startCheck!.witnesses[0]!.answer).toMatch(
      /consistent \(it had cosigned size 1\)/,
    );
    await again.log.close();
  });

  it("refuses a restored older backup, naming the witness and sizes, and signs nothing", async () => {
    const { open, witnessed } = await setUp("backup");
    const { log, db } = await open();
    for (let i = 0; i < 3; i++) await log.submit(payloadOf(i));
    await log.close();
    const backup = db.snapshot(); // size 3
    const later = await open(db.simulateRestart());
    for (let i = 3; i < 8; i++) await later.log.submit(payloadOf(i));
    await later.log.close();
    expect(await witnessed()).toEqual([8, 8, 8]);

    const restored = MemoryDatabase.fromSnapshot(backup);
    const before = await storedCheckpoints(restored);
    const err = await refusal(open(restored));
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/witness w[123] \(http:\/\/127\.0\.0\.1:\d+\) cosigned size 8/);
    expect(err.message).toMatch(/storage holds only 3 entries/);
    expect(err.message).toMatch(/sizes 4…8 a second root/);
    expect(err.message).toMatch(/restore a newer backup that holds at least size 8/);
    expect(err.message).toMatch(/new origin/);
    // Nothing was signed or stored, and the witnesses still hold size 8.
    expect(await storedCheckpoints(restored)).toEqual(before);
    expect(await witnessed()).toEqual([8, 8, 8]);
  });

  it("refuses an empty storage with the same key (DATA/db and DATA/checkpoint deleted)", async () => {
    const { open } = await setUp("empty");
    const { log } = await open();
    await log.submit(payloadOf(1));
    await log.close();
    const err = await refusal(open());
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/cosigned size 1 .* storage holds only 0 entries/);
  });

  it("refuses another history past the witnessed size: the proof from it fails (evidence kept)", async () => {
    const { open, witnesses, witnessed } = await setUp("fork");
    const { log } = await open();
    for (let i = 0; i < 3; i++) await log.submit(payloadOf(i));
    await log.close();
    // Same key, another history, grown without witnesses beyond what they cosigned.
    const fork = await openMemoryLog();
    for (let i = 0; i < 6; i++) await fork.log.submit(payloadOf(i, "forked"));
    await fork.log.close();
    const err = await refusal(open(fork.db.simulateRestart()));
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/does not extend the size-3 tree it cosigned/);
    expect(err.message).toMatch(/another history/);
    expect(await witnessed()).toEqual([3, 3, 3]);
    for (const w of witnesses) expect((await w.witness.evidence()).length).toBeGreaterThan(0);
  });

  it("refuses another root at the witnessed size", async () => {
    const { open } = await setUp("same-size");
    const { log } = await open();
    for (let i = 0; i < 4; i++) await log.submit(payloadOf(i));
    await log.close();
    const fork = await openMemoryLog();
    for (let i = 0; i < 4; i++) await fork.log.submit(payloadOf(i, "forked"));
    await fork.log.close();
    const err = await refusal(open(fork.db.simulateRestart()));
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/cosigned another root for size 4/);
  });

  it("starts with 2 of 3 witnesses answering (the quorum), not with 1", async () => {
    const { open, witnesses } = await setUp("quorum");
    const { log, db } = await open();
    await log.submit(payloadOf(1));
    await log.close();
    await witnesses[0]!.stop();
    const two = await open(db.simulateRestart());
    expect(two.log.status).toBe("open");
    await two.log.close();
    await witnesses[1]!.stop();
    const one = await open(db.simulateRestart());
    expect(one.log.status).toBe("checking");
    expect(one.log.startCheck?.detail).toMatch(/confirmed so far: w3; w1: .*ECONNREFUSED/);
    await one.log.close();
    expect(one.log.status).toBe("closed");
  });

  it("witnesses unreachable at start: nothing signed or accepted until they answer", {
    timeout: 30_000,
  }, async () => {
    const { open, witnesses, witnessed } = await setUp("unreachable");
    const first = await open();
    for (let i = 0; i < 2; i++) await first.log.submit(payloadOf(i));
    await first.log.close();
    // A crash left a batch stored beyond its checkpoint: it too waits for the witnesses.
    const crashed = first.db.simulateRestart();
    const plain = await openMemoryLog(crashed);
    await plain.log.submit(payloadOf(2));
    await plain.log.close();
    await crashed.namespace("log").write([{ type: "del", key: checkpointKey(3) }]);
    const db = crashed.simulateRestart();
    const before = await storedCheckpoints(db);
    expect([...before.keys()].at(-1)).toBe(2);

    for (const w of witnesses) await w.stop();
    const rounds: RollbackCheckStatus[] = [];
    const { log } = await open(db, {
      checkpointIntervalMs: 50, // an idle log would re-sign this often
      onStartCheck: (s) => rounds.push(s),
    });
    expect(log.status).toBe("checking");
    await expect(log.submit(payloadOf(9))).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await until("three rounds of questions", () => rounds.length >= 3);
    expect(rounds.every((r) => r.state === "checking")).toBe(true);
    expect(log.startCheck!.detail).toMatch(/signing nothing until witnesses/);
    expect(await storedCheckpoints(db)).toEqual(before);
    expect(log.size).toBe(2);
    expect(await witnessed()).toEqual([2, 2, 2]);

    for (const w of witnesses) await w.restart();
    await until("the check to pass", () => log.status === "open");
    expect(rounds.at(-1)!.state).toBe("passed");
    expect(log.size).toBe(3); // the uncovered batch, signed only now
    const r = await log.submit(payloadOf(10));
    expect(r.witnessed).toBe(true);
    await log.close();
  });

  it("a witness that answers late and proves the log behind fails it for good", {
    timeout: 30_000,
  }, async () => {
    const { open, witnesses } = await setUp("late");
    const { log, db } = await open();
    await log.submit(payloadOf(1));
    await log.close();
    const backup = db.snapshot();
    const later = await open(db.simulateRestart());
    await later.log.submit(payloadOf(2));
    await later.log.close();

    for (const w of witnesses) await w.stop();
    const rounds: RollbackCheckStatus[] = [];
    const restored = await open(MemoryDatabase.fromSnapshot(backup), {
      onStartCheck: (s) => rounds.push(s),
    });
    expect(restored.log.status).toBe("checking");
    await witnesses[2]!.restart();
    await until("the check to fail", () => restored.log.status === "failed");
    expect(rounds.at(-1)!.state).toBe("failed");
    expect(rounds.at(-1)!.detail).toMatch(/witness w3 .*cosigned size 2/);
    await expect(restored.log.submit(payloadOf(3))).rejects.toMatchObject({
      code: "STATE_MISMATCH",
    });
    await restored.log.close();
  });
});
