/**
 * A log that publishes only witnessed checkpoints, against three real witness HTTP servers on
 * 127.0.0.1 (quorum 2 of 3): it keeps publishing with one witness down, stops publishing new
 * checkpoints with two down (receipts then come back log-signed only, after a bounded wait), and
 * catches up when they return. A forked log with the same key is refused by every witness,
 * which keeps the evidence.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, describe, expect, it } from "vitest";
import { verifierFromKey } from "../../src/core/keys.js";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import { WitnessCollector } from "../../src/log/witnessing.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { Witness } from "../../src/witness/witness.js";
import { ORIGIN, openMemoryLog, payloadOf } from "./helpers.js";

type Server = ReturnType<typeof serve>;
const servers = new Set<Server>();
afterAll(() => {
  for (const s of servers) s.close();
});

function listen(
  app: { fetch: (r: Request) => Response | Promise<Response> },
  port = 0,
): Promise<Server> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => resolve(server));
    servers.add(server);
  });
}
const stop = (s: Server) =>
  new Promise<void>((r) => {
    servers.delete(s);
    s.close(() => r());
    (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });

describe("witnessed publishing", () => {
  it("publishes with 2 of 3 witnesses, stops with 1, recovers, and forks are refused", {
    timeout: 60_000,
  }, async () => {
    // The log's key is known before it opens: the witnesses trust it.
    const probe = await openMemoryLog();
    const logVkey = probe.log.signer.verifierKey;
    await probe.log.close();

    const witnesses = [1, 2, 3].map((n) => {
      const db = new MemoryDatabase();
      const witness = new Witness({
        name: `w${n}.test/witness`,
        seed: new Uint8Array(32).fill(100 + n),
        kv: db.namespace("witness"),
        trusted: new Map([[ORIGIN, [verifierFromKey(logVkey)]]]),
      });
      return { n, db, witness };
    });
    const running = await Promise.all(witnesses.map((w) => listen(createWitnessApp(w.witness))));
    const ports = running.map((s) => (s.address() as AddressInfo).port);
    const policyText = formatPolicy({
      logs: [{ vkey: logVkey }],
      witnesses: witnesses.map((w, i) => ({
        name: `w${w.n}`,
        vkey: w.witness.verifierKey,
        url: `http://127.0.0.1:${ports[i]}`,
      })),
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
    await stop(running[0]!);
    await check(2, true);
    expect(collector.status()[0]!.lastError).not.toBeNull();

    // Two down: no quorum; the log still stores and signs, but publishes nothing new.
    await stop(running[1]!);
    const stuckAt = log.published!.checkpoint.size;
    const late = await check(3, false);
    expect(log.published!.checkpoint.size).toBe(stuckAt);
    expect(log.checkpoint.checkpoint.size).toBe(late.index + 1);

    // They come back (same state, same ports): publishing catches up.
    running[0] = await listen(createWitnessApp(witnesses[0]!.witness), ports[0]);
    running[1] = await listen(createWitnessApp(witnesses[1]!.witness), ports[1]);
    for (let i = 0; i < 50 && log.published!.checkpoint.size < late.index + 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(log.published!.checkpoint.size).toBeGreaterThanOrEqual(late.index + 1);
    const again = await log.receipt(late.index);
    expect(again.witnessed).toBe(true);
    verifyTlogProof(await again.tlogProof(), again.leafHash, logKey, { policy });

    // A fork: same key, different history. Every witness refuses it and keeps evidence.
    const fork = await openMemoryLog(undefined, {
      witnesses: new WitnessCollector(policy, { timeoutMs: 500 }),
      receiptWaitMs: 500,
      witnessRetryMs: 100,
    });
    for (let i = 0; i < log.size + 2; i++) await fork.log.submit(payloadOf(i, "forked"));
    expect(fork.log.published).toBeUndefined();
    for (const w of witnesses) {
      const evidence = await w.witness.evidence();
      expect(evidence.length, `witness ${w.n}`).toBeGreaterThan(0);
      expect(evidence[0]!.origin).toBe(ORIGIN);
      expect((await w.witness.latest(ORIGIN))!.size).toBeLessThanOrEqual(log.size);
    }
    await fork.log.close();
    await log.close();
  });
});
