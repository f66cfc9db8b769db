/**
 * Every write a log makes to its store goes through the one write lock (src/log/context.ts):
 * batch commits, idle re-signs and the final checkpoint at close never overlap, even when the
 * store is slow. A store that takes a few milliseconds per write and counts overlapping writes
 * shows it; without the lock the witness loop's cosigned notes would land in the middle of
 * batch commits.
 */
import { describe, expect, it } from "vitest";
import { formatPolicy, parsePolicy } from "../../src/core/policy.js";
import { Log } from "../../src/log/log.js";
import { WitnessCollector } from "../../src/log/witnessing.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import type { LogStore } from "../../src/storage/log-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { serveWitness } from "../helpers/witness.js";
import { ORIGIN, payloadOf, SEED } from "./helpers.js";

const WRITES = ["create", "setDedup", "commit", "putCheckpoint"] as const;

/** Wraps a store: each write takes `ms` longer and is counted, with the most ever in flight. */
function watched(inner: LogStore, ms: number) {
  const seen = { inFlight: 0, maxInFlight: 0, calls: {} as Record<string, number> };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (!(WRITES as readonly (string | symbol)[]).includes(prop)) return value.bind(target);
      return async (...args: unknown[]) => {
        seen.calls[prop as string] = (seen.calls[prop as string] ?? 0) + 1;
        seen.maxInFlight = Math.max(seen.maxInFlight, ++seen.inFlight);
        try {
          await new Promise((r) => setTimeout(r, ms));
          return await value.apply(target, args);
        } finally {
          seen.inFlight--;
        }
      };
    },
  });
  return { store, seen };
}

describe("the write lock", () => {
  it("never lets the witness loop's writes overlap a batch commit", {
    timeout: 30_000,
  }, async () => {
    const db = new MemoryDatabase();
    const { store, seen } = watched(new KvLogStore(db.namespace("log")), 3);
    const probe = await Log.open({
      origin: ORIGIN,
      seed: SEED,
      kv: new MemoryDatabase().namespace("log"),
    });
    const logVkey = probe.signer.verifierKey;
    await probe.close();
    const witness = await serveWitness(1, logVkey);
    const policy = parsePolicy(
      formatPolicy({
        logs: [{ vkey: logVkey }],
        witnesses: [{ name: witness.name, vkey: witness.vkey, url: witness.url }],
        groups: [],
        quorum: witness.name,
      }),
    );
    const log = await Log.open({
      origin: ORIGIN,
      seed: SEED,
      store,
      batchMaxEntries: 4,
      witnesses: new WitnessCollector(policy, { timeoutMs: 2000 }),
      receiptWaitMs: 50,
      witnessRetryMs: 20,
    });
    try {
      const submitted: Promise<unknown>[] = [];
      for (let round = 0; round < 30; round++) {
        for (let i = 0; i < 6; i++) submitted.push(log.submit(payloadOf(round * 6 + i)));
        await new Promise((r) => setTimeout(r, 4));
      }
      await Promise.all(submitted);
      const deadline = Date.now() + 10_000;
      while (log.published?.checkpoint.size !== 180 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(log.published?.checkpoint.size).toBe(180);
      expect(seen.calls.putCheckpoint).toBeGreaterThanOrEqual(2); // cosigned notes stored
      expect(seen.maxInFlight).toBe(1);
    } finally {
      await log.close();
      await witness.stop();
      await db.close();
    }
  });

  it("never lets two store writes overlap: batches, idle re-signs and close", async () => {
    const db = new MemoryDatabase();
    const { store, seen } = watched(new KvLogStore(db.namespace("log")), 3);
    let now = 1_700_000_000_000;
    const log = await Log.open({
      origin: ORIGIN,
      seed: SEED,
      store,
      batchMaxEntries: 8,
      checkpointIntervalMs: 5,
      clock: () => now,
    });
    const submitted: Promise<unknown>[] = [];
    for (let round = 0; round < 20; round++) {
      now += 1000; // every re-sign tick finds the checkpoint old enough to re-sign
      for (let i = 0; i < 10; i++) submitted.push(log.submit(payloadOf(round * 10 + i)));
      await new Promise((r) => setTimeout(r, 8));
    }
    await Promise.all(submitted);
    // Idle now: let the re-sign timer fire a few times on its own.
    for (let i = 0; i < 5; i++) {
      now += 1000;
      await new Promise((r) => setTimeout(r, 10));
    }
    await log.close();
    expect(log.size).toBe(200);
    expect(seen.calls.commit).toBeGreaterThanOrEqual(200 / 8);
    expect(seen.calls.putCheckpoint).toBeGreaterThanOrEqual(2); // re-signs and the final one
    expect(seen.maxInFlight).toBe(1);
    await db.close();
  });
});
