/**
 * A log that publishes only witnessed checkpoints, against three real witness HTTP servers on
 * 127.0.0.1 (quorum 2 of 3): it keeps publishing with one witness down, stops publishing new
 * checkpoints with two down (receipts then come back log-signed only, after a bounded wait), and
 * catches up when they return. A forked log with the same key is refused at its start, and by
 * every witness, which keeps the evidence.
 */
import { describe, expect, it } from "vitest";
import { verifierFromKey } from "../../src/core/keys.js";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import { WitnessCollector } from "../../src/log/witnessing.js";
import { serveWitness } from "../helpers/witness.js";
import { ORIGIN, openMemoryLog, payloadOf } from "./helpers.js";

describe("witnessed publishing", () => {
  it("publishes with 2 of 3 witnesses, stops with 1, recovers, and forks are refused", {
    timeout: 60_000,
  }, async () => {
    // The log's key is known before it opens: the witnesses trust it.
    const probe = await openMemoryLog();
    const logVkey = probe.log.signer.verifierKey;
    await probe.log.close();

    const witnesses = await Promise.all([1, 2, 3].map((n) => serveWitness(n, logVkey)));
    const policyText = formatPolicy({
      logs: [{ vkey: logVkey }],
      witnesses: witnesses.map((w) => ({ name: w.name, vkey: w.vkey, url: w.url })),
      groups: [{ name: "two-of-three", threshold: 2, members: ["w1", "w2", "w3"] }],
      quorum: "two-of-three",
    });
    const policy = parsePolicy(policyText);
    const collector = new WitnessCollector(policy, { timeoutMs: 500 });
    const { log } = await openMemoryLog(undefined, {
      witnesses: collector,
      receiptWaitMs: 800,
      witnessRetryMs: 100,
    });
    const logKey = verifierFromKey(logVkey);

    const check = async (i: number, witnessed: boolean) => {
      const r = await log.submit(payloadOf(i));
      expect(r.witnessed).toBe(witnessed);
      const text = await r.tlogProof();
      if (witnessed) verifyTlogProof(text, r.leafHash, logKey, { policy });
      else
        expect(() => verifyTlogProof(text, r.leafHash, logKey, { policy })).toThrowError(
          expect.objectContaining({ code: "QUORUM_NOT_MET" }),
        );
      return r;
    };

    // All three up.
    const first = await check(1, true);
    expect(log.published!.checkpoint.size).toBeGreaterThanOrEqual(first.index + 1);
    expect(collector.status().every((s) => s.cosignedSize !== null)).toBe(true);

    // One down: still 2 of 3.
    await witnesses[0]!.stop();
    await check(2, true);
    expect(collector.status()[0]!.lastError).not.toBeNull();

    // Two down: no quorum; the log still stores and signs, but publishes nothing new.
    await witnesses[1]!.stop();
    const stuckAt = log.published!.checkpoint.size;
    const late = await check(3, false);
    expect(log.published!.checkpoint.size).toBe(stuckAt);
    expect(log.checkpoint.checkpoint.size).toBe(late.index + 1);

    // They come back (same state, same ports): publishing catches up.
    await witnesses[0]!.restart();
    await witnesses[1]!.restart();
    for (let i = 0; i < 50 && log.published!.checkpoint.size < late.index + 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(log.published!.checkpoint.size).toBeGreaterThanOrEqual(late.index + 1);
    const again = await log.receipt(late.index);
    expect(again.witnessed).toBe(true);
    verifyTlogProof(await again.tlogProof(), again.leafHash, logKey, { policy });

    // A fork: same key, different history. It cannot start with the witnesses (its empty
    // storage is behind them: src/log/rollback-check.ts); grown without them beyond what they
    // cosigned, it is still refused, and every witness keeps the evidence.
    const opening = openMemoryLog(undefined, {
      witnesses: new WitnessCollector(policy, { timeoutMs: 500 }),
    });
    await expect(opening).rejects.toMatchObject({ code: "STATE_MISMATCH" });
    const fork = await openMemoryLog();
    for (let i = 0; i < log.size + 2; i++) await fork.log.submit(payloadOf(i, "forked"));
    await fork.log.close();
    const reopened = openMemoryLog(fork.db.simulateRestart(), {
      witnesses: new WitnessCollector(policy, { timeoutMs: 500 }),
    });
    await expect(reopened).rejects.toMatchObject({ code: "STATE_MISMATCH" });
    for (const w of witnesses) {
      const evidence = await w.witness.evidence();
      expect(evidence.length, `witness ${w.name}`).toBeGreaterThan(0);
      expect(evidence[0]!.origin).toBe(ORIGIN);
      expect((await w.witness.latest(ORIGIN))!.size).toBeLessThanOrEqual(log.size);
    }
    await log.close();
  });
});
